# Credentials of the data plane live in Secrets owned by Terraform, so the chart never generates
# them (existingSecret everywhere) and a re-install keeps them. Managed services get their given
# credentials; in-cluster services get random ones.

locals {
  labels = merge(var.labels, {
    "app.kubernetes.io/managed-by" = "terraform"
    "app.kubernetes.io/part-of"    = "converge"
  })
  suffix = "svc.cluster.local"
}

resource "random_password" "postgres_user" {
  length  = 32
  special = false # it is embedded in a URL
}

resource "random_password" "postgres_admin" {
  length  = 32
  special = false
}

resource "random_password" "postgres_role" {
  for_each = toset(["predict", "ingest"])
  length   = 32
  special  = false
}

resource "random_password" "postgres_migrator" {
  length  = 32
  special = false
}

resource "random_password" "redis" {
  length  = 32
  special = false
}

resource "random_password" "minio_user" {
  length  = 20
  special = false
}

resource "random_password" "minio_password" {
  length  = 40
  special = false
}

resource "random_password" "minio_reader" {
  length  = 40
  special = false
}

resource "kubernetes_secret_v1" "postgres" {
  metadata {
    name      = "${var.name}-db-credentials"
    namespace = var.namespace
    labels    = local.labels
  }
  data = {
    password          = var.postgres.managed ? var.postgres_password : random_password.postgres_user.result
    postgres-password = random_password.postgres_admin.result
    predict-password  = var.postgres.managed ? var.postgres_role_passwords.predict : random_password.postgres_role["predict"].result
    ingest-password   = var.postgres.managed ? var.postgres_role_passwords.ingest : random_password.postgres_role["ingest"].result
  }
}

# The migration role's password: a Secret of its own, read only by the chart's migration Job.
resource "kubernetes_secret_v1" "postgres_migrator" {
  metadata {
    name      = "${var.name}-db-migrator-credentials"
    namespace = var.namespace
    labels    = local.labels
  }
  data = {
    password = var.postgres.managed ? var.migrator_password : random_password.postgres_migrator.result
  }
}

resource "kubernetes_secret_v1" "redis" {
  metadata {
    name      = "${var.name}-redis-credentials"
    namespace = var.namespace
    labels    = local.labels
  }
  data = {
    redis-password = var.redis.managed ? var.redis_password : random_password.redis.result
  }
}

resource "kubernetes_secret_v1" "s3" {
  metadata {
    name      = "${var.name}-s3-credentials"
    namespace = var.namespace
    labels    = local.labels
  }
  data = {
    access-key = var.s3.managed ? var.s3_access_key : random_password.minio_user.result
    secret-key = var.s3.managed ? var.s3_secret_key : random_password.minio_password.result
    # Read-only identity of the predict and reload functions.
    reader-access-key = var.s3.managed ? var.s3_reader.access_key : "converge-reader"
    reader-secret-key = var.s3.managed ? var.s3_reader.secret_key : random_password.minio_reader.result
  }
}

locals {
  # Chart values for the data plane; merged into the release by the converge module.
  helm_values = {
    postgresql = {
      enabled = !var.postgres.managed
      auth = {
        username       = var.postgres.username
        database       = var.postgres.database
        existingSecret = kubernetes_secret_v1.postgres.metadata[0].name
      }
    }
    pgbouncer = { enabled = !var.postgres.managed }
    # The chart's hook Job runs the migrations before the functions, on install and upgrade.
    migrations = {
      enabled                   = true
      username                  = var.postgres.migrator_username
      existingSecret            = kubernetes_secret_v1.postgres_migrator.metadata[0].name
      existingSecretPasswordKey = "password"
    }
    externalDatabase = {
      host                      = var.postgres.host
      port                      = var.postgres.port
      directHost                = var.postgres.direct_host
      directPort                = var.postgres.direct_port
      username                  = var.postgres.username
      database                  = var.postgres.database
      existingSecret            = kubernetes_secret_v1.postgres.metadata[0].name
      existingSecretPasswordKey = "password"
    }
    redis = {
      enabled = !var.redis.managed
      auth    = { existingSecret = kubernetes_secret_v1.redis.metadata[0].name }
    }
    externalRedis = {
      host           = var.redis.host
      port           = var.redis.port
      db             = var.redis.db
      tls            = var.redis.tls
      existingSecret = kubernetes_secret_v1.redis.metadata[0].name
    }
    minio = {
      enabled = !var.s3.managed
      bucket  = var.s3.bucket
      auth    = { existingSecret = kubernetes_secret_v1.s3.metadata[0].name }
    }
    externalS3 = {
      endpoint       = var.s3.endpoint
      region         = var.s3.region
      bucket         = var.s3.bucket
      existingSecret = kubernetes_secret_v1.s3.metadata[0].name
    }
  }

  database_host = var.postgres.managed ? var.postgres.host : "${var.name}-pgbouncer.${var.namespace}.${local.suffix}"
  database_port = var.postgres.managed ? var.postgres.port : 6432
  redis_host    = var.redis.managed ? var.redis.host : "${var.name}-redis.${var.namespace}.${local.suffix}"
  redis_port    = var.redis.managed ? var.redis.port : 6379
  s3_endpoint   = var.s3.managed ? var.s3.endpoint : "http://${var.name}-minio.${var.namespace}.${local.suffix}:9000"
}
