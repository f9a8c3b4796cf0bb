terraform {
  required_version = ">= 1.11"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "6.49.3" # a root pins exactly (the module keeps a range); see docs/deploy.md: the lock file
    }
  }

  # Partial configuration: the state bucket is given at init time, so this file
  # names no project. See backend.hcl.example and docs/deploy.md:
  #   terraform init -backend-config=backend.hcl
  backend "gcs" {}
}
