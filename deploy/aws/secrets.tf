# The two secrets: the webhook signing secret (read by the Lambda function)
# and the agent pool token (read by ECS for the task, through the execution
# role). Either may be brought as an existing secret's ARN instead.

locals {
  create_signing_secret     = var.signing_secret_arn == null
  create_agent_token_secret = var.agent_token_secret_arn == null

  signing_secret_arn     = local.create_signing_secret ? aws_secretsmanager_secret.signing[0].arn : var.signing_secret_arn
  agent_token_secret_arn = local.create_agent_token_secret ? aws_secretsmanager_secret.agent_token[0].arn : var.agent_token_secret_arn
}

resource "aws_secretsmanager_secret" "signing" {
  count = local.create_signing_secret ? 1 : 0

  name_prefix = "${var.name_prefix}/webhook-signing-secret-"
  description = "Signing secret of the Outpost pool webhook, checked by the ${local.function_name} Lambda function."
  kms_key_id  = var.secrets_kms_key_arn
  tags        = var.tags
}

resource "aws_secretsmanager_secret_version" "signing" {
  count = local.create_signing_secret ? 1 : 0

  secret_id = aws_secretsmanager_secret.signing[0].id
  # The handler reads either form; JSON only while a rotation overlaps two secrets.
  secret_string = var.signing_secret_previous == null ? var.signing_secret : jsonencode({
    current  = var.signing_secret
    previous = var.signing_secret_previous
  })

  lifecycle {
    precondition {
      condition     = var.signing_secret != null
      error_message = "Set signing_secret (the secret the control plane printed when the pool webhook was set) or signing_secret_arn (an existing secret holding it)."
    }
  }
}

resource "aws_secretsmanager_secret" "agent_token" {
  count = local.create_agent_token_secret ? 1 : 0

  name_prefix = "${var.name_prefix}/agent-pool-token-"
  description = "Outpost agent pool token of the ${local.family} tasks."
  kms_key_id  = var.secrets_kms_key_arn
  tags        = var.tags
}

resource "aws_secretsmanager_secret_version" "agent_token" {
  count = local.create_agent_token_secret ? 1 : 0

  secret_id     = aws_secretsmanager_secret.agent_token[0].id
  secret_string = var.agent_token

  lifecycle {
    precondition {
      condition     = var.agent_token != null
      error_message = "Set agent_token (the pool token, opp_…) or agent_token_secret_arn (an existing secret holding it)."
    }
  }
}
