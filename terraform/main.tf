# The converge platform on an existing Kubernetes cluster with Knative Serving and Eventing:
# credentials and data-plane wiring (in-cluster or managed), then the Helm release. The module
# configures no provider: the root module that calls it does (see examples/).

locals {
  # Same rule as the chart's converge.fullname helper.
  fullname   = substr(length(regexall("converge", var.release_name)) > 0 ? var.release_name : "${var.release_name}-converge", 0, 40)
  chart_path = coalesce(var.chart_path, "${path.module}/../charts/converge")
  namespace  = var.create_namespace ? kubernetes_namespace_v1.this[0].metadata[0].name : var.namespace
}

resource "kubernetes_namespace_v1" "this" {
  count = var.create_namespace ? 1 : 0

  metadata {
    name = var.namespace
    labels = {
      "app.kubernetes.io/part-of" = "converge"
    }
  }
}

module "data_plane" {
  source = "./modules/data-plane"

  name              = local.fullname
  namespace         = local.namespace
  postgres          = var.postgres
  postgres_password = var.postgres_password
  migrator_password = var.postgres_migrator_password
  redis             = var.redis
  redis_password    = var.redis_password
  s3                = var.s3
  s3_access_key     = var.s3_access_key
  s3_secret_key     = var.s3_secret_key

  postgres_role_passwords = var.postgres_role_passwords
  s3_reader               = var.s3_reader
}

module "converge" {
  source = "./modules/converge"

  release_name          = var.release_name
  namespace             = local.namespace
  chart_path            = local.chart_path
  image_registry        = var.image_registry
  image_tag             = var.image_tag
  data_plane_values     = module.data_plane.helm_values
  h2o                   = var.h2o
  functions             = var.functions
  mage_ingress_host     = var.mage_ingress_host
  predict_domain        = var.predict_domain
  external_egress_cidrs = var.external_egress_cidrs
  extra_values          = var.extra_values
}
