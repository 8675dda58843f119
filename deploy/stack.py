"""What a production stack adds around Chalice's functions (issue 15, SPEC §7).

``deploy.package`` calls ``add_production_resources`` on the merged template:

* parameters: custom domain and certificate (the issuer), alarm e-mail, WAF rate
  limit, API throttling, SnapStart, reserved concurrency;
* the signing-key secret, created empty, encrypted with a customer-managed KMS
  key of its own; the functions only read and update it;
* one API stage (``OpenApiVersion`` set, so SAM adds no ``Stage`` stage), stage
  and per-method throttling, JSON access logs without secrets, execution logs
  at ERROR, an optional regional WAF web ACL with a per-IP rate rule, an
  optional regional custom domain with a TLS 1.2 policy;
* a failure path for the scheduled jobs (an SQS queue for failed invocations,
  from the schedule and from Lambda) and CloudWatch alarms to an SNS topic: API
  5xx, Lambda errors and throttles, the rotation job, DynamoDB throttling, the
  failure queue.

Every name the resources need (functions, tables, log groups) comes from the
template Chalice produced and ``chalicelib.storage.schema``; nothing is listed twice.
"""

from __future__ import annotations

from typing import Any

from deploy import iam
from deploy.stages import Stage

API_ID = "RestAPI"
API_STAGE_ID = "RestAPIapiStage"          # SAM's id for the stage of RestAPI
API_FUNCTION_ID = "APIHandler"
API_ALIAS = "live"
API_ALIAS_ID = f"{API_FUNCTION_ID}Alias{API_ALIAS}"
TOPIC_ID = "AlarmTopic"
ACCESS_LOG_ID = "ApiAccessLogGroup"

# Pages and the token endpoint get their own, lower limits (API Gateway
# ResourcePath spelling: "/" escaped as "~1"). Sign-in and token requests cost a
# password hash or a signature each; the rest of the API is cheap. Only those the
# app serves are set: API Gateway refuses a method setting for a missing method.
SENSITIVE_METHODS = (("/oauth/token", "POST"), ("/oauth/authorize", "GET"), ("/oauth/authorize", "POST"),
                     ("/tokens/signin", "POST"), ("/device", "POST"))

# Access log fields: who, what, how it ended. No query string ($context.path has
# none; a PAT may ride in ?access_token=), no headers, no body.
ACCESS_LOG_FORMAT = (
    '{"requestId":"$context.requestId","ip":"$context.identity.sourceIp",'
    '"requestTime":"$context.requestTime","method":"$context.httpMethod",'
    '"resource":"$context.resourcePath","protocol":"$context.protocol",'
    '"status":"$context.status","responseLength":"$context.responseLength",'
    '"latencyMs":"$context.responseLatency","integrationLatencyMs":"$context.integrationLatency",'
    '"integrationError":"$context.integrationErrorMessage","wafStatus":"$context.waf.status",'
    '"domain":"$context.domainName"}')


def parameters(stage: Stage) -> dict[str, dict[str, Any]]:
    prod = stage.name == "prod"
    return {
        "DomainName": {
            "Type": "String", "Default": "",
            "Description": "Custom domain of the issuer (id.example.com); empty: the execute-api URL",
        },
        "CertificateArn": {
            "Type": "String", "Default": "",
            "Description": "ACM certificate for DomainName, in the stack's region (needed with DomainName)",
        },
        "MailFrom": {
            "Type": "String", "Default": "",
            "Description": "Sender of Tessera's mail (invitations, password resets, notices): an "
                           "address of an SES identity verified in this region (SPEC §11)",
        },
        "AlarmEmail": {
            "Type": "String", "Default": "",
            "Description": "E-mail address subscribed to the alarm topic; empty: no subscription",
        },
        "WafRateLimit": {
            "Type": "Number", "Default": 1000 if prod else 0, "MinValue": 0,
            "Description": "Requests per IP per 5 minutes before the WAF blocks it; 0: no web ACL",
        },
        "ApiRateLimit": {
            "Type": "Number", "Default": 500 if prod else 50, "MinValue": 1,
            "Description": "Stage-wide steady request rate per second (API Gateway throttling)",
        },
        "ApiBurstLimit": {
            "Type": "Number", "Default": 1000 if prod else 100, "MinValue": 1,
            "Description": "Stage-wide burst (API Gateway throttling)",
        },
        "SensitiveRateLimit": {
            "Type": "Number", "Default": 50 if prod else 10, "MinValue": 1,
            "Description": "Rate per second of POST /oauth/token and the sign-in pages",
        },
        "SensitiveBurstLimit": {
            "Type": "Number", "Default": 100 if prod else 20, "MinValue": 1,
            "Description": "Burst of POST /oauth/token and the sign-in pages",
        },
        "SnapStart": {
            "Type": "String", "Default": "false", "AllowedValues": ["true", "false"],
            "Description": "Lambda SnapStart on the API function (published versions)",
        },
        "ApiReservedConcurrency": {
            "Type": "Number", "Default": 100 if prod else 0, "MinValue": 0,
            "Description": "Reserved concurrency of the API function; 0: none (the account pool)",
        },
        "JobsReservedConcurrency": {
            "Type": "Number", "Default": 1, "MinValue": 0, "MaxValue": 1,
            "Description": "Reserved concurrency of each scheduled job: 1 (one run at a time) or 0 (none)",
        },
        "ConfigureApiGatewayAccount": {
            "Type": "String", "Default": "true", "AllowedValues": ["true", "false"],
            "Description": "Set API Gateway's account-wide CloudWatch role (needed once per region "
                           "for execution logs); false if the account already has one",
        },
    }


CONDITIONS: dict[str, Any] = {
    "HasDomain": {"Fn::Not": [{"Fn::Equals": [{"Ref": "DomainName"}, ""]}]},
    "HasAlarmEmail": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]},
    "HasWaf": {"Fn::Not": [{"Fn::Equals": [{"Ref": "WafRateLimit"}, 0]}]},
    "UseSnapStart": {"Fn::Equals": [{"Ref": "SnapStart"}, "true"]},
    "ReserveApi": {"Fn::Not": [{"Fn::Equals": [{"Ref": "ApiReservedConcurrency"}, 0]}]},
    "ReserveJobs": {"Fn::Not": [{"Fn::Equals": [{"Ref": "JobsReservedConcurrency"}, 0]}]},
    "SetApiGatewayAccount": {"Fn::Equals": [{"Ref": "ConfigureApiGatewayAccount"}, "true"]},
}


def _sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


def _alarm(description: str, namespace: str, metric: str, dimensions: dict[str, Any], *,
           statistic: str = "Sum", period: int = 300, threshold: float = 1,
           evaluation_periods: int = 1) -> dict[str, Any]:
    return {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmDescription": description,
            "Namespace": namespace,
            "MetricName": metric,
            "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
            "Statistic": statistic,
            "Period": period,
            "EvaluationPeriods": evaluation_periods,
            "Threshold": threshold,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": TOPIC_ID}],
            "OKActions": [{"Ref": TOPIC_ID}],
        },
    }


def _secret(stage: Stage) -> dict[str, Any]:
    return {
        iam.SECRET_KEY_ID: {
            "Type": "AWS::KMS::Key",
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                "Description": f"Tessera {stage.name}: encrypts the signing-key secret",
                "EnableKeyRotation": True,
                "KeyPolicy": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        # The account administers the key; IAM policies grant its use
                        # (the functions' roles, through Secrets Manager only).
                        "Sid": "AccountAdministers",
                        "Effect": "Allow",
                        "Principal": {"AWS": _sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")},
                        "Action": "kms:*",
                        "Resource": "*",
                    }],
                },
            },
        },
        "SigningKeysKeyAlias": {
            "Type": "AWS::KMS::Alias",
            "Properties": {"AliasName": f"alias/{stage.function_prefix}-signing-keys",
                           "TargetKeyId": {"Ref": iam.SECRET_KEY_ID}},
        },
        iam.SECRET_ID: {
            "Type": "AWS::SecretsManager::Secret",
            # Keys sign live tokens: a failed first create may drop the empty
            # secret, a later delete or replacement keeps it.
            "DeletionPolicy": "RetainExceptOnCreate",
            "UpdateReplacePolicy": "Retain",
            "Properties": {
                # Neither SecretString nor GenerateSecretString: created empty; the
                # first function that needs keys writes the first version.
                "Name": stage.keys_secret,
                "Description": f"Tessera {stage.name} JWT signing keys (written by the functions)",
                "KmsKeyId": {"Ref": iam.SECRET_KEY_ID},
            },
        },
    }


def _api_gateway(resources: dict[str, Any], stage: Stage) -> None:
    api = resources[API_ID]["Properties"]
    # Without OpenApiVersion SAM adds a stage named "Stage" beside ours: a second
    # issuer URL with its own discovery document.
    api["OpenApiVersion"] = "3.0.1"
    settings: list[dict[str, Any]] = [{
        "ResourcePath": "/*", "HttpMethod": "*",
        "ThrottlingRateLimit": {"Ref": "ApiRateLimit"},
        "ThrottlingBurstLimit": {"Ref": "ApiBurstLimit"},
        "LoggingLevel": "ERROR", "MetricsEnabled": True, "DataTraceEnabled": False,
    }]
    paths = api["DefinitionBody"].get("paths", {})
    for path, method in SENSITIVE_METHODS:
        if method.lower() not in paths.get(path, {}):
            continue
        settings.append({
            "ResourcePath": "/" + path.replace("/", "~1"), "HttpMethod": method,
            "ThrottlingRateLimit": {"Ref": "SensitiveRateLimit"},
            "ThrottlingBurstLimit": {"Ref": "SensitiveBurstLimit"},
            "LoggingLevel": "ERROR", "MetricsEnabled": True, "DataTraceEnabled": False,
        })
    api["MethodSettings"] = settings
    api["AccessLogSetting"] = {"DestinationArn": {"Fn::GetAtt": [ACCESS_LOG_ID, "Arn"]},
                               "Format": ACCESS_LOG_FORMAT}
    api["TracingEnabled"] = False
    resources[ACCESS_LOG_ID] = {
        "Type": "AWS::Logs::LogGroup",
        "DeletionPolicy": "Delete",
        "UpdateReplacePolicy": "Delete",
        "Properties": {"LogGroupName": f"/aws/apigateway/{stage.function_prefix}-access",
                       "RetentionInDays": stage.log_retention_days},
    }
    resources["ApiGatewayCloudWatchRole"] = {
        "Type": "AWS::IAM::Role",
        "Condition": "SetApiGatewayAccount",
        "Properties": {
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"},
                "Action": "sts:AssumeRole"}]},
            "ManagedPolicyArns": [_sub("arn:${AWS::Partition}:iam::aws:policy/service-role/"
                                       "AmazonAPIGatewayPushToCloudWatchLogs")],
        },
    }
    resources["ApiGatewayAccount"] = {
        "Type": "AWS::ApiGateway::Account",
        "Condition": "SetApiGatewayAccount",
        "Properties": {"CloudWatchRoleArn": {"Fn::GetAtt": ["ApiGatewayCloudWatchRole", "Arn"]}},
    }
    stage_arn = _sub(f"arn:${{AWS::Partition}}:apigateway:${{AWS::Region}}::/restapis/${{{API_ID}}}"
                     f"/stages/{stage.api_stage}")
    resources["WebAcl"] = {
        "Type": "AWS::WAFv2::WebACL",
        "Condition": "HasWaf",
        "Properties": {
            "Name": f"{stage.function_prefix}-api",
            "Scope": "REGIONAL",
            "DefaultAction": {"Allow": {}},
            "VisibilityConfig": {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True,
                                 "MetricName": f"{stage.function_prefix}-api"},
            "Rules": [{
                "Name": "rate-per-ip",
                "Priority": 0,
                "Action": {"Block": {}},
                "Statement": {"RateBasedStatement": {"Limit": {"Ref": "WafRateLimit"},
                                                     "AggregateKeyType": "IP"}},
                "VisibilityConfig": {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True,
                                     "MetricName": f"{stage.function_prefix}-rate-per-ip"},
            }],
        },
    }
    resources["WebAclAssociation"] = {
        "Type": "AWS::WAFv2::WebACLAssociation",
        "Condition": "HasWaf",
        "DependsOn": [API_STAGE_ID],
        "Properties": {"ResourceArn": stage_arn, "WebACLArn": {"Fn::GetAtt": ["WebAcl", "Arn"]}},
    }
    resources["ApiDomainName"] = {
        "Type": "AWS::ApiGateway::DomainName",
        "Condition": "HasDomain",
        "Properties": {
            "DomainName": {"Ref": "DomainName"},
            "RegionalCertificateArn": {"Ref": "CertificateArn"},
            "EndpointConfiguration": {"Types": ["REGIONAL"]},
            "SecurityPolicy": "TLS_1_2",
        },
    }
    resources["ApiBasePathMapping"] = {
        "Type": "AWS::ApiGateway::BasePathMapping",
        "Condition": "HasDomain",
        "DependsOn": [API_STAGE_ID],
        "Properties": {"DomainName": {"Ref": "ApiDomainName"}, "RestApiId": {"Ref": API_ID},
                       "Stage": stage.api_stage},
    }


def _snapstart(resources: dict[str, Any]) -> None:
    """Published versions and an alias for the API function; SnapStart on them when
    the parameter says so. API Gateway invokes the alias."""
    fn = resources[API_FUNCTION_ID]["Properties"]
    fn["AutoPublishAlias"] = API_ALIAS
    fn["SnapStart"] = {"ApplyOn": {"Fn::If": ["UseSnapStart", "PublishedVersions", "None"]}}
    body = resources[API_ID]["Properties"]["DefinitionBody"]
    for operations in body.get("paths", {}).values():
        for operation in operations.values():
            if not isinstance(operation, dict):
                continue
            integration = operation.get("x-amazon-apigateway-integration")
            uri = integration.get("uri") if integration else None
            if isinstance(uri, dict) and "Fn::Sub" in uri:
                uri["Fn::Sub"] = uri["Fn::Sub"].replace(f"${{{API_FUNCTION_ID}.Arn}}", f"${{{API_ALIAS_ID}}}")
    permission = resources.get(f"{API_FUNCTION_ID}InvokePermission")
    if permission:
        permission["Properties"]["FunctionName"] = {"Ref": API_ALIAS_ID}


def _failure_path(resources: dict[str, Any], stage: Stage, jobs: dict[str, str]) -> None:
    queue_arn = {"Fn::GetAtt": [iam.FAILURE_QUEUE_ID, "Arn"]}
    resources[iam.FAILURE_QUEUE_ID] = {
        "Type": "AWS::SQS::Queue",
        "Properties": {"QueueName": f"{stage.function_prefix}-jobs-failed",
                       "MessageRetentionPeriod": 1209600, "SqsManagedSseEnabled": True},
    }
    for fid in jobs:
        props = resources[fid]["Properties"]
        for event in props.get("Events", {}).values():
            if event.get("Type") == "Schedule":
                # The schedule could not invoke the function (throttled, deleted).
                event["Properties"]["DeadLetterConfig"] = {"Arn": queue_arn}
                event["Properties"]["RetryPolicy"] = {"MaximumRetryAttempts": 2,
                                                      "MaximumEventAgeInSeconds": 3600}
        # The function ran and failed: Lambda retries twice, then sends the event here.
        props["EventInvokeConfig"] = {
            "MaximumRetryAttempts": 2,
            "DestinationConfig": {"OnFailure": {"Type": "SQS", "Destination": queue_arn}},
        }
    resources["JobsFailureQueuePolicy"] = {
        "Type": "AWS::SQS::QueuePolicy",
        "Properties": {
            "Queues": [{"Ref": iam.FAILURE_QUEUE_ID}],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Sid": "SchedulesDeadLetter",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
            }]},
        },
    }


def _alarms(resources: dict[str, Any], stage: Stage, functions: dict[str, str],
            table_ids: list[str]) -> None:
    resources[TOPIC_ID] = {
        "Type": "AWS::SNS::Topic",
        # Not encrypted: CloudWatch cannot publish to a topic under the AWS-managed
        # SNS key (its key policy admits no service), and alarms carry no secret.
        "Properties": {"TopicName": f"{stage.function_prefix}-alarms"},
    }
    resources["AlarmTopicPolicy"] = {
        "Type": "AWS::SNS::TopicPolicy",
        "Properties": {
            "Topics": [{"Ref": TOPIC_ID}],
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Sid": "CloudWatchAlarms",
                "Effect": "Allow",
                "Principal": {"Service": "cloudwatch.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": {"Ref": TOPIC_ID},
                "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
            }]},
        },
    }
    resources["AlarmEmailSubscription"] = {
        "Type": "AWS::SNS::Subscription",
        "Condition": "HasAlarmEmail",
        "Properties": {"TopicArn": {"Ref": TOPIC_ID}, "Protocol": "email",
                       "Endpoint": {"Ref": "AlarmEmail"}},
    }
    api_name = {"ApiName": stage.app_name, "Stage": stage.api_stage}
    resources["Api5xxAlarm"] = _alarm(
        f"{stage.function_prefix}: the API answered 5xx", "AWS/ApiGateway", "5XXError", api_name,
        threshold=5)
    for fid, name in functions.items():
        dims = {"FunctionName": {"Ref": fid}}
        resources[f"{fid}ErrorsAlarm"] = _alarm(
            f"{name}: invocations failed", "AWS/Lambda", "Errors", dims,
            threshold=1 if fid != API_FUNCTION_ID else 5)
        resources[f"{fid}ThrottlesAlarm"] = _alarm(
            f"{name}: invocations throttled", "AWS/Lambda", "Throttles", dims)
    for tid in table_ids:
        for metric in ("ReadThrottleEvents", "WriteThrottleEvents"):
            resources[f"{tid}{metric.removesuffix('Events')}Alarm"] = _alarm(
                f"{stage.function_prefix}: DynamoDB throttled {metric[:-14].lower()}s",
                "AWS/DynamoDB", metric, {"TableName": {"Ref": tid}})
    resources["JobsFailureQueueAlarm"] = _alarm(
        f"{stage.function_prefix}: a scheduled job failed for good (see the failure queue)",
        "AWS/SQS", "ApproximateNumberOfMessagesVisible",
        {"QueueName": {"Fn::GetAtt": [iam.FAILURE_QUEUE_ID, "QueueName"]}}, statistic="Maximum")


def add_production_resources(template: dict[str, Any], stage: Stage,
                             functions: dict[str, str], table_ids: list[str]) -> None:
    """``functions``: logical id -> Chalice function name, for every function."""
    resources: dict[str, Any] = template["Resources"]
    template.setdefault("Parameters", {}).update(parameters(stage))
    template.setdefault("Conditions", {}).update(CONDITIONS)
    resources.update(_secret(stage))
    _api_gateway(resources, stage)
    _snapstart(resources)
    jobs = {fid: name for fid, name in functions.items() if fid != API_FUNCTION_ID}
    _failure_path(resources, stage, jobs)
    _alarms(resources, stage, functions, table_ids)
    for fid in functions:
        props = resources[fid]["Properties"]
        env = props["Environment"]["Variables"]
        # One issuer: the custom domain when there is one, else the stage's setting.
        env["TESSERA_ISSUER"] = {"Fn::If": ["HasDomain", _sub("https://${DomainName}"),
                                            env.get("TESSERA_ISSUER", "")]}
        # The sender, and the only address the functions may send as (deploy/iam.py).
        env["TESSERA_MAIL_FROM"] = {"Ref": "MailFrom"}
        param, condition = (("ApiReservedConcurrency", "ReserveApi") if fid == API_FUNCTION_ID
                            else ("JobsReservedConcurrency", "ReserveJobs"))
        props["ReservedConcurrentExecutions"] = {"Fn::If": [condition, {"Ref": param},
                                                            {"Ref": "AWS::NoValue"}]}
        # Functions start after the secret exists (they read it on first use).
        current = resources[fid].setdefault("DependsOn", [])
        for dep in (iam.SECRET_ID,):
            if dep not in current:
                current.append(dep)
    outputs = template.setdefault("Outputs", {})
    outputs["Issuer"] = {"Value": {"Fn::If": ["HasDomain", _sub("https://${DomainName}"),
                                              _sub(f"https://${{{API_ID}}}.execute-api.${{AWS::Region}}."
                                                   f"${{AWS::URLSuffix}}/{stage.api_stage}")]}}
    outputs["DomainTarget"] = {
        "Condition": "HasDomain",
        "Description": "Point the custom domain here (DNS CNAME or Route 53 alias)",
        "Value": {"Fn::GetAtt": ["ApiDomainName", "RegionalDomainName"]},
    }
    outputs["AlarmTopicArn"] = {"Value": {"Ref": TOPIC_ID}}
    outputs["SigningKeysSecretArn"] = {"Value": {"Ref": iam.SECRET_ID}}
    outputs["JobsFailureQueueUrl"] = {"Value": {"Ref": iam.FAILURE_QUEUE_ID}}
