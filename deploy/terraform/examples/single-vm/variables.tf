variable "project" {
  description = "The GCP project."
  type        = string
}

variable "region" {
  description = "The region, e.g. us-east4."
  type        = string
  default     = "us-east4"
}

variable "zone" {
  description = "The zone, e.g. us-east4-a."
  type        = string
  default     = "us-east4-a"
}

variable "name" {
  description = "The VM's name."
  type        = string
  default     = "turnstiled"
}

variable "machine_type" {
  description = "The machine type."
  type        = string
  default     = "e2-standard-2"
}

variable "network" {
  description = "The VPC network."
  type        = string
  default     = "default"
}

variable "subnetwork" {
  description = "The subnetwork in var.region."
  type        = string
  default     = "default"
}

variable "scrape_cidr" {
  description = "Where Prometheus scrapes from: the only range admitted, to tcp/9464 only."
  type        = string
}

variable "deb_url" {
  description = "Where the VM downloads the turnstiled .deb."
  type        = string
}

variable "pg_dsn" {
  description = "The warehouse's libpq connection string (it holds the password)."
  type        = string
  sensitive   = true
}

variable "kafka_bootstrap" {
  description = "The Kafka bootstrap servers, host:port[,host:port...]."
  type        = string
}
