# Everything in the cluster: Postgres + PgBouncer, Redis, MinIO and a 3-node H2O cloud.
module "converge" {
  source = "../.."

  namespace      = "converge"
  image_registry = "registry.example.com/ml"
  image_tag      = "0.1.0"

  h2o = {
    enabled      = true
    replicas     = 3
    memory_limit = "16Gi"
    cpu_limit    = "4"
  }

  mage_ingress_host = "mage.example.com"
}
