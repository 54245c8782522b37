variable "kubeconfig_path" {
  description = "Kubeconfig the helm and kubernetes providers use."
  type        = string
  default     = "~/.kube/config"

  validation {
    condition     = length(var.kubeconfig_path) > 0
    error_message = "kubeconfig_path must not be empty."
  }
}

variable "kube_context" {
  description = "Kubeconfig context; empty uses the current context."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^[A-Za-z0-9@:/._-]*$", var.kube_context))
    error_message = "kube_context contains characters a context name cannot have."
  }
}
