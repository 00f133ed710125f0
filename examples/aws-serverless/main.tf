# Outpost serverless agents in AWS, in the account's default VPC: a pool
# webhook starts one Fargate task per queued job. See README.md for the
# two commands and how to connect the pool.

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }
  }
}

variable "region" {
  description = "AWS region of the agents."
  type        = string
  default     = "us-east-1"
}

variable "name_prefix" {
  description = "Prefix of the names of everything created."
  type        = string
  default     = "outpost-serverless"
}

variable "signing_secret" {
  description = "The signing secret `outpost pool webhook set` printed."
  type        = string
  sensitive   = true
}

variable "agent_token" {
  description = "A pool token from `outpost pool token create` (opp_…)."
  type        = string
  sensitive   = true
}

provider "aws" {
  region = var.region
}

# The default VPC's default subnets are public: the tasks get a public IP
# to pull their image and reach the control plane.
data "aws_vpc" "default" {
  default = true
}

data "aws_subnets" "default" {
  filter {
    name   = "vpc-id"
    values = [data.aws_vpc.default.id]
  }

  filter {
    name   = "default-for-az"
    values = ["true"]
  }
}

resource "aws_security_group" "agents" {
  name_prefix = "${var.name_prefix}-agents-"
  description = "Outpost agent tasks: outbound only."
  vpc_id      = data.aws_vpc.default.id

  egress {
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

module "outpost" {
  source = "../../deploy/aws"

  name_prefix        = var.name_prefix
  subnet_ids         = data.aws_subnets.default.ids
  security_group_ids = [aws_security_group.agents.id]
  assign_public_ip   = true
  signing_secret     = var.signing_secret
  agent_token        = var.agent_token
}

output "webhook_url" {
  description = "Give it to the pool: outpost pool webhook set <pool> <webhook_url>."
  value       = module.outpost.webhook_url
}

output "log_group_names" {
  description = "Where to look when a job is not picked up: the handler's log and the agents'."
  value       = module.outpost.log_group_names
}

output "task_role_arn" {
  description = "Attach the runs' AWS permissions to this role (the module's task_role_policy_arns)."
  value       = module.outpost.task_role_arn
}
