terraform {
  # 1.11: write-only attributes and the terraform_data resource; the roots pin the same.
  required_version = ">= 1.11"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.20, < 8.0"
    }
  }
}
