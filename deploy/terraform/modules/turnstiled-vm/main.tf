# One Compute Engine VM that runs turnstiled from its Debian package under systemd, and one
# firewall rule that admits Prometheus to the metrics port, and nothing else.
#
# Debian's GCE images run no cloud-init; the guest agent runs the `startup-script` metadata at
# every boot instead. templates/startup-script.sh.tftpl is that script: it installs the .deb,
# writes /etc/turnstiled/turnstiled.yaml and turnstiled.env, and enables the unit. It is
# idempotent, so a changed config or package reaches the VM on its next boot (or at once with
# `sudo google_metadata_script_runner startup`).

locals {
  network_tag = "${var.name}-metrics"

  # Scrapable from var.scrape_cidr unless the caller says otherwise.
  env = merge({ TURNSTILED_METRICS_LISTEN = "0.0.0.0:9464" }, var.env)

  # KEY=<base64 of the value> lines; the startup script writes them out quoted for systemd.
  env_lines = join("", [for k in sort(keys(local.env)) : "${k}=${base64encode(local.env[k])}\n"])

  startup_script = templatefile("${path.module}/templates/startup-script.sh.tftpl", {
    deb_url         = var.deb_url
    config_yaml_b64 = base64encode(var.config_yaml)
    env_lines_b64   = base64encode(local.env_lines)
  })
}

resource "google_compute_instance" "turnstiled" {
  project      = var.project
  zone         = var.zone
  name         = var.name
  machine_type = var.machine_type
  tags         = [local.network_tag]
  labels       = merge({ app = "turnstiled" }, var.labels)

  boot_disk {
    initialize_params {
      image = var.image
      size  = var.disk_size_gb
      type  = "pd-balanced"
    }
  }

  network_interface {
    network    = var.network
    subnetwork = var.subnetwork

    dynamic "access_config" {
      for_each = var.external_ip ? [1] : []
      content {}
    }
  }

  metadata = {
    startup-script         = local.startup_script
    enable-oslogin         = "TRUE"
    block-project-ssh-keys = "TRUE"
  }

  dynamic "service_account" {
    for_each = var.service_account_email == null ? [] : [var.service_account_email]
    content {
      email  = service_account.value
      scopes = ["cloud-platform"]
    }
  }

  shielded_instance_config {
    enable_secure_boot          = true
    enable_vtpm                 = true
    enable_integrity_monitoring = true
  }

  allow_stopping_for_update = true

  lifecycle {
    precondition {
      condition     = startswith(var.zone, "${var.region}-")
      error_message = "zone ${var.zone} is not in region ${var.region}."
    }
  }
}

# Prometheus, from var.scrape_cidr, to /metrics, /healthz and /readyz: the only way in that
# this module opens.
resource "google_compute_firewall" "metrics" {
  project       = var.project
  name          = "${var.name}-allow-metrics"
  network       = var.network
  direction     = "INGRESS"
  priority      = 1000
  source_ranges = [var.scrape_cidr]
  target_tags   = [local.network_tag]

  allow {
    protocol = "tcp"
    ports    = ["9464"]
  }
}
