# The AWS receiver of an Outpost pool webhook: API Gateway (HTTP API) →
# Lambda (deploy/aws/lambda, bundled by scripts/bundle-aws-lambda.ts) →
# ECS RunTask on Fargate of the agent image in single mode, one task per
# queued job. The resources are split by concern: secrets.tf, iam.tf,
# ecs.tf, lambda.tf, api.tf.

locals {
  lambda_package = coalesce(var.lambda_package, "${path.module}/dist/outpost-webhook-handler.zip")

  function_name  = "${var.name_prefix}-webhook"
  family         = "${var.name_prefix}-agent"
  container_name = "agent"

  # Region and partition from an ARN this module creates: no data source,
  # so no extra API call and no STS permission for whoever applies it.
  cluster_arn_parts = split(":", aws_ecs_cluster.agents.arn)
  partition         = local.cluster_arn_parts[1]
  region            = local.cluster_arn_parts[3]
  account_id        = local.cluster_arn_parts[4]

  # What the agent needs to run one job and exit; the module's own settings
  # win over agent_environment.
  agent_environment = merge(
    var.agent_environment,
    var.outpost_url == null ? {} : { OUTPOST_URL = var.outpost_url },
    {
      OUTPOST_AGENT_SINGLE = "true"
      OUTPOST_AGENT_DRIVER = "local"
    },
  )

  # An image in ECR: the execution role may pull from that repository only.
  # Any other registry (Docker Hub by default) needs no AWS permission.
  ecr_image = try(regex("^([0-9]{12})\\.dkr\\.ecr\\.([a-z0-9-]+)\\.amazonaws\\.com(\\.cn)?/([^:@]+)", var.agent_image), null)
  ecr_repository_arn = local.ecr_image == null ? null : format(
    "arn:%s:ecr:%s:%s:repository/%s",
    local.ecr_image[2] == null ? "aws" : "aws-cn", local.ecr_image[1], local.ecr_image[0], local.ecr_image[3],
  )
}
