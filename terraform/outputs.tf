output "namespace" {
  description = "Namespace of the platform."
  value       = local.namespace
}

output "release_name" {
  description = "Helm release name."
  value       = module.converge.release_name
}

output "predict_url" {
  description = "URL of the predict function."
  value       = module.converge.predict_url
}

output "reload_url" {
  description = "In-cluster URL of the reload function (POST /admin/reload-model)."
  value       = module.converge.reload_url
}

output "ingest_url" {
  description = "In-cluster URL of the ingest function."
  value       = module.converge.ingest_url
}

output "broker_url" {
  description = "Knative Broker ingress for features.ingest and model.published events."
  value       = module.converge.broker_url
}

output "h2o_url" {
  description = "H2O REST endpoint."
  value       = module.converge.h2o_url
}

output "mage_url" {
  description = "Mage UI."
  value       = module.converge.mage_url
}

output "database_endpoint" {
  description = "host:port of Postgres as the functions reach it (PgBouncer, or the managed pooler)."
  value       = module.data_plane.database_endpoint
}

output "redis_endpoint" {
  description = "host:port of Redis."
  value       = module.data_plane.redis_endpoint
}

output "s3_endpoint" {
  description = "S3 endpoint of the artifact store."
  value       = module.data_plane.s3_endpoint
}

output "s3_bucket" {
  description = "Bucket of the MOJO artifacts."
  value       = module.data_plane.s3_bucket
}

output "secret_names" {
  description = "Credential Secrets: database, redis, s3, and the write credentials (admin token, publish key, ingest token)."
  value       = merge(module.data_plane.secret_names, { admin = module.converge.admin_token_secret })
}
