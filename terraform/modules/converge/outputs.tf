output "release_name" {
  description = "Name of the Helm release."
  value       = helm_release.converge.name
}

output "predict_url" {
  description = "In-cluster URL of the predict function (Knative routes it; the public URL is in the ksvc status)."
  value       = var.predict_domain == "" ? "http://${local.fullname}-predict.${local.suffix}" : "https://${var.predict_domain}"
}

output "reload_url" {
  description = "In-cluster URL of the reload function; POST /admin/reload-model with the admin bearer token."
  value       = "http://${local.fullname}-reload.${local.suffix}"
}

output "ingest_url" {
  description = "In-cluster URL of the ingest function."
  value       = "http://${local.fullname}-ingest.${local.suffix}"
}

output "broker_url" {
  description = "Knative Broker ingress: POST features.ingest and model.published CloudEvents here."
  value       = "http://broker-ingress.knative-eventing.svc.cluster.local/${var.namespace}/${local.fullname}-broker"
}

output "h2o_url" {
  description = "H2O REST endpoint used by training."
  value       = var.h2o.enabled ? "http://${local.fullname}-h2o.${local.suffix}:54321" : var.h2o.external_url
}

output "mage_url" {
  description = "Mage UI: the TLS ingress host, or the in-cluster Service."
  value       = var.mage_ingress_host != "" ? "https://${var.mage_ingress_host}" : "http://${local.fullname}-mage.${local.suffix}:6789"
}

output "admin_token_secret" {
  description = "Secret holding the write credentials: admin token (key admin-token), publish key (publish-key), ingest token (ingest-token)."
  value       = "${local.fullname}-admin"
}
