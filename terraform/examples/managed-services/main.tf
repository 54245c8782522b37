# Managed data plane (e.g. RDS Proxy in front of Postgres, ElastiCache with TLS, S3); only the
# functions, H2O and Mage run in the cluster. Credentials come in as sensitive variables.
module "converge" {
  source = "../.."

  namespace      = "converge"
  image_registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/converge"
  image_tag      = "0.1.0"

  postgres = {
    managed     = true
    host        = "converge.proxy-abc123.eu-west-1.rds.amazonaws.com"
    port        = 5432
    direct_host = "converge.cluster-abc123.eu-west-1.rds.amazonaws.com"
  }
  postgres_password          = var.db_password
  postgres_role_passwords    = var.db_role_passwords
  postgres_migrator_password = var.db_migrator_password

  redis = {
    managed = true
    host    = "master.converge.abc123.euw1.cache.amazonaws.com"
    tls     = true
  }
  redis_password = var.redis_auth_token

  s3 = {
    managed  = true
    endpoint = "https://s3.eu-west-1.amazonaws.com"
    region   = "eu-west-1"
    bucket   = "example-converge-models"
  }
  s3_access_key = var.s3_access_key
  s3_secret_key = var.s3_secret_key
  s3_reader     = var.s3_reader

  external_egress_cidrs = ["10.0.0.0/16"]
}
