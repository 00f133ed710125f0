# Least privilege, as the Scalr agent's installation guide lays out its
# serverless roles, narrowed further where IAM allows:
#
# - the Lambda function's role: run tasks of this task family on this
#   cluster, list this cluster's tasks (one task per delivery), tag the
#   tasks it starts, pass exactly the two task roles to ECS, read the
#   signing secret, write its own log. The function runs outside any VPC,
#   so the guide's ec2 network interface permissions are not needed.
# - the task execution role (used by ECS, not by the agent): pull the image
#   (from its ECR repository, when it is in ECR), write the task log, read
#   the agent token secret.
# - the task role (the agent and the runs' OpenTofu): nothing, unless
#   task_role_policy_arns gives the runs their cloud permissions.

locals {
  # Who may take each role: the function's by Lambda, the task's two by ECS tasks.
  assumed_by = {
    for key, service in { lambda = "lambda.amazonaws.com", ecs_tasks = "ecs-tasks.amazonaws.com" } : key => jsonencode({
      Version   = "2012-10-17"
      Statement = [{ Effect = "Allow", Principal = { Service = service }, Action = "sts:AssumeRole" }]
    })
  }
}

locals {
  # Statements that exist only with a setting: a for over a list of zero or
  # one keeps both branches the same type (a conditional would not).
  kms_decrypt = [for key in var.secrets_kms_key_arn == null ? [] : [var.secrets_kms_key_arn] : {
    Effect   = "Allow"
    Action   = "kms:Decrypt"
    Resource = key
    Condition = {
      StringEquals = { "kms:ViaService" = "secretsmanager.${local.region}.amazonaws.com" }
    }
  }]

  ecr_pull = flatten([for repository in local.ecr_repository_arn == null ? [] : [local.ecr_repository_arn] : [
    {
      # GetAuthorizationToken has no resource to narrow it to.
      Sid      = "RegistryLogin"
      Effect   = "Allow"
      Action   = "ecr:GetAuthorizationToken"
      Resource = "*"
    },
    {
      Sid      = "PullAgentImage"
      Effect   = "Allow"
      Action   = ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"]
      Resource = repository
    },
  ]])
}

resource "aws_iam_role" "lambda" {
  name               = "${var.name_prefix}-webhook"
  description        = "Role of the ${local.function_name} Lambda function: starts Outpost agent tasks."
  assume_role_policy = local.assumed_by.lambda
  tags               = var.tags
}

resource "aws_iam_role_policy" "lambda" {
  name = "start-agent-tasks"
  role = aws_iam_role.lambda.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat([
      {
        Sid      = "OwnLog"
        Effect   = "Allow"
        Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
        Resource = "${aws_cloudwatch_log_group.lambda.arn}:*"
      },
      {
        Sid      = "RunAgentTasks"
        Effect   = "Allow"
        Action   = "ecs:RunTask"
        Resource = "${replace(aws_ecs_task_definition.agent.arn, "/:[0-9]+$/", "")}:*"
        Condition = {
          ArnEquals = { "ecs:cluster" = aws_ecs_cluster.agents.arn }
        }
      },
      {
        # ListTasks is authorized per container instance, which Fargate tasks
        # have none of: the cluster condition is what narrows it.
        Sid      = "FindTaskOfDelivery"
        Effect   = "Allow"
        Action   = "ecs:ListTasks"
        Resource = "*"
        Condition = {
          ArnEquals = { "ecs:cluster" = aws_ecs_cluster.agents.arn }
        }
      },
      {
        Sid      = "TagStartedTasks"
        Effect   = "Allow"
        Action   = "ecs:TagResource"
        Resource = "arn:${local.partition}:ecs:${local.region}:${local.account_id}:task/${aws_ecs_cluster.agents.name}/*"
        Condition = {
          StringEquals = { "ecs:CreateAction" = "RunTask" }
        }
      },
      {
        Sid      = "PassTaskRoles"
        Effect   = "Allow"
        Action   = "iam:PassRole"
        Resource = [aws_iam_role.task.arn, aws_iam_role.execution.arn]
        Condition = {
          StringEquals = { "iam:PassedToService" = "ecs-tasks.amazonaws.com" }
        }
      },
      {
        Sid      = "ReadSigningSecret"
        Effect   = "Allow"
        Action   = "secretsmanager:GetSecretValue"
        Resource = local.signing_secret_arn
      },
    ], local.kms_decrypt)
  })
}

resource "aws_iam_role" "execution" {
  name               = "${var.name_prefix}-task-execution"
  description        = "ECS task execution role of the ${local.family} tasks: image, log, agent token."
  assume_role_policy = local.assumed_by.ecs_tasks
  tags               = var.tags
}

resource "aws_iam_role_policy" "execution" {
  name = "agent-task-start"
  role = aws_iam_role.execution.id
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = concat(
      [
        {
          Sid      = "TaskLog"
          Effect   = "Allow"
          Action   = ["logs:CreateLogStream", "logs:PutLogEvents"]
          Resource = "${aws_cloudwatch_log_group.tasks.arn}:*"
        },
        {
          Sid      = "ReadAgentToken"
          Effect   = "Allow"
          Action   = "secretsmanager:GetSecretValue"
          Resource = local.agent_token_secret_arn
        },
      ],
      local.ecr_pull,
      local.kms_decrypt,
    )
  })
}

resource "aws_iam_role" "task" {
  name               = "${var.name_prefix}-task"
  description        = "Role of the ${local.family} tasks: the AWS credentials of the agent and of the runs' OpenTofu."
  assume_role_policy = local.assumed_by.ecs_tasks
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "task" {
  count = length(var.task_role_policy_arns)

  role       = aws_iam_role.task.name
  policy_arn = var.task_role_policy_arns[count.index]
}
