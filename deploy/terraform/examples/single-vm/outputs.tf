output "instance_name" {
  description = "The VM's name."
  value       = module.turnstiled.instance_name
}

output "metrics_url" {
  description = "What Prometheus scrapes."
  value       = module.turnstiled.metrics_url
}
