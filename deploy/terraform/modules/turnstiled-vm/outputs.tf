output "instance_name" {
  description = "The VM's name."
  value       = google_compute_instance.turnstiled.name
}

output "instance_self_link" {
  description = "The VM's self link."
  value       = google_compute_instance.turnstiled.self_link
}

output "internal_ip" {
  description = "The VM's address in var.subnetwork."
  value       = google_compute_instance.turnstiled.network_interface[0].network_ip
}

output "metrics_url" {
  description = "What Prometheus scrapes (from var.scrape_cidr)."
  value       = "http://${google_compute_instance.turnstiled.network_interface[0].network_ip}:9464/metrics"
}

output "firewall_rule" {
  description = "The firewall rule that admits var.scrape_cidr to tcp/9464."
  value       = google_compute_firewall.metrics.name
}
