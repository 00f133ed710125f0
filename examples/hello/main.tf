# The configuration `npm start` runs. It needs no cloud account and no
# provider download: terraform_data is built into OpenTofu and Terraform.

variable "name" {
  type        = string
  default     = "Outpost"
  description = "Who says hello."
}

resource "terraform_data" "greeting" {
  input = "Hello from ${var.name}!"

  provisioner "local-exec" {
    command = "echo \"provisioned on $(hostname) by the Outpost agent\""
  }
}

output "greeting" {
  value = terraform_data.greeting.output
}

output "greeting_id" {
  value = terraform_data.greeting.id
}
