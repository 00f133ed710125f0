variable "name_prefix" {
  description = "Prefix of every name this module creates (cluster, task family, function, roles, API, log groups, secrets)."
  type        = string
  default     = "outpost-serverless"

  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9-]{0,31}$", var.name_prefix))
    error_message = "name_prefix must start with a letter and hold at most 32 letters, digits and hyphens: it is part of IAM role, Lambda and ECS names."
  }
}

variable "tags" {
  description = "Tags for every resource; they reach the agent tasks too (propagated from the task definition)."
  type        = map(string)
  default     = {}
}

# Networking of the agent tasks.

variable "subnet_ids" {
  description = "Subnets of the agent tasks (awsvpc). They need a route to the internet, or to the control plane and the image registry: public subnets with assign_public_ip, or private ones behind a NAT gateway. Two or more, in different availability zones, ride out a zone without Fargate capacity."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "subnet_ids needs at least one subnet."
  }
}

variable "security_group_ids" {
  description = "Security groups of the agent tasks. Empty: the VPC's default security group. The agent needs outbound access only."
  type        = list(string)
  default     = []
}

variable "assign_public_ip" {
  description = "Give each task a public IP: needed in public subnets without a NAT gateway, or the task cannot pull its image or reach the control plane."
  type        = bool
  default     = true
}

# Secrets.

variable "signing_secret" {
  description = "The pool webhook's signing secret, as the control plane printed it when the webhook was set (`outpost pool webhook set`). Stored in a new Secrets Manager secret. Give this or signing_secret_arn."
  type        = string
  default     = null
  sensitive   = true
}

variable "signing_secret_previous" {
  description = "During a rotation of the pool's signing secret: the secret being rotated out, still accepted beside signing_secret until you remove it. Only with signing_secret."
  type        = string
  default     = null
  sensitive   = true
}

variable "signing_secret_arn" {
  description = "An existing Secrets Manager secret holding the signing secret, alone or as JSON {\"current\": \"…\", \"previous\": \"…\"} during a rotation. Give this or signing_secret."
  type        = string
  default     = null
}

variable "agent_token" {
  description = "The agent pool token (opp_…) the tasks register with. Stored in a new Secrets Manager secret. Give this or agent_token_secret_arn."
  type        = string
  default     = null
  sensitive   = true
}

variable "agent_token_secret_arn" {
  description = "An existing Secrets Manager secret whose string is the agent pool token alone. Give this or agent_token."
  type        = string
  default     = null
}

variable "secrets_kms_key_arn" {
  description = "Customer managed KMS key of the secrets, when not the account's aws/secretsmanager key: the roles that read them get kms:Decrypt on it."
  type        = string
  default     = null
}

# The agent task.

variable "agent_image" {
  description = "Image of the agent tasks. An image in ECR gets pull permissions on its repository only."
  type        = string
  default     = "outpost/agent-runner:latest"
}

variable "task_cpu" {
  description = "CPU units of an agent task (Fargate sizes: 256, 512, 1024, 2048, 4096, …)."
  type        = number
  default     = 2048
}

variable "task_memory" {
  description = "Memory of an agent task in MiB; must be a size Fargate allows with task_cpu."
  type        = number
  default     = 4096
}

variable "task_cpu_architecture" {
  description = "CPU architecture of the agent tasks: X86_64 or ARM64 (the image must have it)."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.task_cpu_architecture)
    error_message = "task_cpu_architecture is X86_64 or ARM64."
  }
}

variable "outpost_url" {
  description = "URL of the control plane for the agents. Null: the URL the pool token carries."
  type        = string
  default     = null
}

variable "agent_environment" {
  description = "More environment variables of the agent container (for example OUTPOST_AGENT_SINGLE_IDLE_TIMEOUT). Never a secret: use the task role for credentials."
  type        = map(string)
  default     = {}
}

variable "task_role_policy_arns" {
  description = "IAM policies attached to the task role, which the runs' OpenTofu uses as its AWS credentials. Empty by default: the runs get no AWS permissions."
  type        = list(string)
  default     = []
}

# The receiver.

variable "allowed_pool_ids" {
  description = "Pool ids whose deliveries start tasks; deliveries of other pools get 403. Empty: any pool signed with the signing secret."
  type        = list(string)
  default     = []
}

variable "lambda_package" {
  description = "The handler's zip, built by `node scripts/bundle-aws-lambda.ts`. Null: dist/outpost-webhook-handler.zip in this module's directory, where the script writes it."
  type        = string
  default     = null
}

variable "lambda_architecture" {
  description = "Architecture of the Lambda function: arm64 or x86_64 (the handler is plain JavaScript)."
  type        = string
  default     = "arm64"

  validation {
    condition     = contains(["arm64", "x86_64"], var.lambda_architecture)
    error_message = "lambda_architecture is arm64 or x86_64."
  }
}

variable "log_retention_days" {
  description = "Days CloudWatch Logs keeps the function's and the tasks' logs."
  type        = number
  default     = 30
}

variable "api_throttling_burst_limit" {
  description = "Burst of requests the webhook endpoint accepts before answering 429 (which the control plane retries)."
  type        = number
  default     = 50
}

variable "api_throttling_rate_limit" {
  description = "Requests per second the webhook endpoint accepts in the long run."
  type        = number
  default     = 20
}
