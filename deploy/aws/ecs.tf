# The cluster the agent tasks run in, and their task definition: the agent
# image in single mode with the local driver, the pool token from Secrets
# Manager, its log in CloudWatch. The Lambda function adds the job's id per
# task (container override OUTPOST_AGENT_JOB_ID).

resource "aws_ecs_cluster" "agents" {
  name = var.name_prefix
  tags = var.tags
}

resource "aws_cloudwatch_log_group" "tasks" {
  name              = "/ecs/${local.family}"
  retention_in_days = var.log_retention_days
  tags              = var.tags
}

resource "aws_ecs_task_definition" "agent" {
  family                   = local.family
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = tostring(var.task_cpu)
  memory                   = tostring(var.task_memory)
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task.arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.task_cpu_architecture
  }

  container_definitions = jsonencode([{
    name      = local.container_name
    image     = var.agent_image
    essential = true
    # The task's memory, again per container: some ECS implementations want it there.
    memory = var.task_memory
    # Sorted, as ECS returns them, so a plan after apply shows no change.
    environment = [for name in sort(keys(local.agent_environment)) : { name = name, value = local.agent_environment[name] }]
    secrets = [{
      name      = "OUTPOST_AGENT_TOKEN"
      valueFrom = local.agent_token_secret_arn
    }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.tasks.name
        awslogs-region        = local.region
        awslogs-stream-prefix = "agent"
      }
    }
    # The agent hands its job back (or finishes the apply step it is in) when stopped.
    stopTimeout = 120
  }])

  tags = var.tags
}
