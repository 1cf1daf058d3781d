# One turnstiled VM, with the repository's production config (config/turnstiled.yaml) and its
# secrets from terraform.tfvars (see terraform.tfvars.example). ../../README.md walks through
# init, plan and apply.

provider "google" {
  project = var.project
  region  = var.region
}

module "turnstiled" {
  source = "../../modules/turnstiled-vm"

  project      = var.project
  region       = var.region
  zone         = var.zone
  name         = var.name
  machine_type = var.machine_type
  network      = var.network
  subnetwork   = var.subnetwork
  scrape_cidr  = var.scrape_cidr
  deb_url      = var.deb_url
  config_yaml  = file("${path.module}/../../../../config/turnstiled.yaml")
  env = {
    PG_DSN          = var.pg_dsn
    KAFKA_BOOTSTRAP = var.kafka_bootstrap
  }
}
