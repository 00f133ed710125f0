# The webhook handler: checks each delivery's signature and starts one agent
# task per queued job. Its settings are environment variables; see
# deploy/aws/lambda/config.ts.

resource "aws_cloudwatch_log_group" "lambda" {
  name              = "/aws/lambda/${local.function_name}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_lambda_function" "webhook" {
  function_name = local.function_name
  description   = "Starts an Outpost agent task on ECS Fargate for each queued job of the pool webhook."
  role          = aws_iam_role.lambda.arn
  runtime       = "nodejs22.x"
  handler       = "index.handler"
  architectures = [var.lambda_architecture]
  memory_size   = 256
  # Under API Gateway's 30 s limit, so the control plane gets the function's answer.
  timeout = 25

  filename         = local.lambda_package
  source_code_hash = fileexists(local.lambda_package) ? filebase64sha256(local.lambda_package) : null

  environment {
    variables = {
      OUTPOST_SIGNING_SECRET_ARN = local.signing_secret_arn
      OUTPOST_ECS_CLUSTER        = aws_ecs_cluster.agents.name
      # The family: RunTask takes its latest ACTIVE revision.
      OUTPOST_TASK_DEFINITION  = aws_ecs_task_definition.agent.family
      OUTPOST_CONTAINER_NAME   = local.container_name
      OUTPOST_SUBNETS          = join(",", var.subnet_ids)
      OUTPOST_SECURITY_GROUPS  = join(",", var.security_group_ids)
      OUTPOST_ASSIGN_PUBLIC_IP = var.assign_public_ip ? "ENABLED" : "DISABLED"
      OUTPOST_ALLOWED_POOLS    = join(",", var.allowed_pool_ids)
    }
  }

  tags = var.tags

  # The log group first, or Lambda creates it without a retention.
  depends_on = [aws_cloudwatch_log_group.lambda, aws_iam_role_policy.lambda]

  lifecycle {
    precondition {
      condition     = fileexists(local.lambda_package)
      error_message = "The handler's zip is missing at ${local.lambda_package}: build it with `node scripts/bundle-aws-lambda.ts` from the Outpost repository, or set lambda_package."
    }
    precondition {
      condition     = var.signing_secret_arn == null || var.signing_secret == null
      error_message = "Set signing_secret or signing_secret_arn, not both."
    }
    precondition {
      condition     = var.agent_token_secret_arn == null || var.agent_token == null
      error_message = "Set agent_token or agent_token_secret_arn, not both."
    }
  }
}
