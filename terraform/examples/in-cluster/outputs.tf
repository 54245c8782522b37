output "predict_url" {
  description = "URL of the predict function."
  value       = module.converge.predict_url
}

output "broker_url" {
  description = "Where to send CloudEvents."
  value       = module.converge.broker_url
}
