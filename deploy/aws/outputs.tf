output "webhook_url" {
  description = "The URL to give the pool: `outpost pool webhook set <pool> <webhook_url>`."
  # The $default stage's invoke URL ends with a slash.
  value = "${trimsuffix(aws_apigatewayv2_stage.default.invoke_url, "/")}/webhook"
}

output "signing_secret_arn" {
  description = "The Secrets Manager secret holding the webhook signing secret (update it to rotate)."
  value       = local.signing_secret_arn
}

output "agent_token_secret_arn" {
  description = "The Secrets Manager secret holding the agent pool token."
  value       = local.agent_token_secret_arn
}

output "cluster_arn" {
  description = "The ECS cluster the agent tasks run in."
  value       = aws_ecs_cluster.agents.arn
}

output "task_definition_arn" {
  description = "The agent task definition (its latest revision)."
  value       = aws_ecs_task_definition.agent.arn
}

output "task_role_arn" {
  description = "The agent tasks' role: the AWS credentials of the runs. Attach policies with task_role_policy_arns."
  value       = aws_iam_role.task.arn
}

output "execution_role_arn" {
  description = "The agent tasks' execution role (image pull, log, agent token)."
  value       = aws_iam_role.execution.arn
}

output "lambda_function_name" {
  description = "The webhook handler function."
  value       = aws_lambda_function.webhook.function_name
}

output "log_group_names" {
  description = "CloudWatch log groups: `lambda` (one JSON line per delivery) and `tasks` (the agents)."
  value = {
    lambda = aws_cloudwatch_log_group.lambda.name
    tasks  = aws_cloudwatch_log_group.tasks.name
  }
}
