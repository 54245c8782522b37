output "database_endpoint" {
  description = "Pooler endpoint the functions use."
  value       = module.converge.database_endpoint
}

output "predict_url" {
  description = "URL of the predict function."
  value       = module.converge.predict_url
}
