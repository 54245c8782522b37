terraform {
  required_version = ">= 1.9.0" # validations refer to other variables

  required_providers {
    helm = {
      source  = "hashicorp/helm"
      version = "= 2.17.0"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "= 2.36.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "= 3.7.1"
    }
  }
}
