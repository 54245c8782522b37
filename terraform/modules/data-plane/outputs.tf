output "helm_values" {
  description = "Values of the converge chart that wire the data plane (in-cluster or managed)."
  value       = local.helm_values
}

output "database_endpoint" {
  description = "host:port the functions use for Postgres (PgBouncer in the cluster, or the managed pooler)."
  value       = "${local.database_host}:${local.database_port}"
}

output "redis_endpoint" {
  description = "host:port of Redis."
  value       = "${local.redis_host}:${local.redis_port}"
}

output "s3_endpoint" {
  description = "S3 endpoint URL of the artifact store."
  value       = local.s3_endpoint
}

output "s3_bucket" {
  description = "Bucket holding the MOJO artifacts."
  value       = var.s3.bucket
}

output "secret_names" {
  description = "Names of the credential Secrets (database, redis, s3)."
  value = {
    database = kubernetes_secret_v1.postgres.metadata[0].name
    redis    = kubernetes_secret_v1.redis.metadata[0].name
    s3       = kubernetes_secret_v1.s3.metadata[0].name
  }
}
