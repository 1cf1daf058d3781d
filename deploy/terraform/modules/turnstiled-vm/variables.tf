variable "project" {
  description = "The GCP project that holds the VM and its firewall rule."
  type        = string
}

variable "region" {
  description = "The region of the subnetwork, e.g. us-east4."
  type        = string
}

variable "zone" {
  description = "The zone of the VM, in var.region, e.g. us-east4-a."
  type        = string

  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]+-[a-z]$", var.zone))
    error_message = "zone must look like us-east4-a."
  }
}

variable "name" {
  description = "The VM's name; also the prefix of the firewall rule and the network tag."
  type        = string
  default     = "turnstiled"

  validation {
    condition     = can(regex("^[a-z]([-a-z0-9]{0,40}[a-z0-9])?$", var.name))
    error_message = "name must be a lowercase RFC 1035 label of at most 42 characters."
  }
}

variable "machine_type" {
  description = "The machine type. 2 vCPUs and 8 GB hold the MTA network with the default config (docs/OPERATIONS.md: under 300 MiB)."
  type        = string
  default     = "e2-standard-2"
}

variable "network" {
  description = "The VPC network (name or self link) of the VM and of the firewall rule."
  type        = string
}

variable "subnetwork" {
  description = "The subnetwork (name or self link) in var.region. It must reach Kafka, PostgreSQL and var.deb_url (Cloud NAT when external_ip is false)."
  type        = string
}

variable "scrape_cidr" {
  description = "The only source range admitted, and only to the metrics port tcp/9464: where Prometheus scrapes from, e.g. 10.10.0.0/24."
  type        = string

  validation {
    condition     = can(cidrhost(var.scrape_cidr, 0)) && var.scrape_cidr != "0.0.0.0/0"
    error_message = "scrape_cidr must be one CIDR block, and not 0.0.0.0/0: /metrics is not for the internet."
  }
}

variable "deb_url" {
  description = "Where the VM downloads turnstiled_<version>_amd64.deb (scripts/package.sh), e.g. an HTTPS or signed Cloud Storage URL."
  type        = string

  validation {
    condition     = can(regex("^https?://[^'\\s]+$", var.deb_url))
    error_message = "deb_url must be an http(s) URL without spaces or single quotes."
  }
}

variable "config_yaml" {
  description = "The content of /etc/turnstiled/turnstiled.yaml, e.g. file(\"config/turnstiled.yaml\"). Keep secrets out of it: use $${VAR} and var.env."
  type        = string
}

variable "env" {
  description = "The content of /etc/turnstiled/turnstiled.env (mode 0600): PG_DSN, KAFKA_BOOTSTRAP, ... TURNSTILED_METRICS_LISTEN defaults to 0.0.0.0:9464 so that var.scrape_cidr can scrape."
  type        = map(string)
  default     = {}
  sensitive   = true

  validation {
    condition = alltrue([
      for k, v in var.env : can(regex("^[A-Za-z_][A-Za-z0-9_]*$", k)) && !can(regex("[\n\r]", v))
    ])
    error_message = "env keys must be shell variable names, and values must be one line."
  }
}

variable "image" {
  description = "The boot image. The package is built for Debian 12 (bookworm)."
  type        = string
  default     = "debian-cloud/debian-12"
}

variable "disk_size_gb" {
  description = "The boot disk's size; the lake and the dead letter live on it, under /var/lib/turnstiled."
  type        = number
  default     = 50
}

variable "external_ip" {
  description = "Give the VM an ephemeral public IP. Off by default: use Cloud NAT for outbound traffic. The firewall rule admits only var.scrape_cidr either way."
  type        = bool
  default     = false
}

variable "service_account_email" {
  description = "The VM's service account (null: none). Give it one when deb_url is a private Cloud Storage object or for logging agents."
  type        = string
  default     = null
}

variable "labels" {
  description = "Labels of the VM."
  type        = map(string)
  default     = {}
}
