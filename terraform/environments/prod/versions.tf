terraform {
  required_version = ">= 1.11"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.20, < 8.0"
    }
  }

  # Partial configuration: the state bucket is given at init time, so this file
  # names no project. See backend.hcl.example and docs/deploy.md:
  #   terraform init -backend-config=backend.hcl
  backend "gcs" {}
}
