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
ACCOUNT_READY_ID = "ApiGatewayAccountReady"
DASHBOARD_ID = "Dashboard"
# Audit events (chalicelib.services.authn) counted from the API function's log.
AUDIT_METRICS = {"SigninFailures": "signin_failed", "SigninLockouts": "signin_lockout"}
ACCESS_LOG_ID = "ApiAccessLogGroup"

# Pages and the token endpoint get their own, lower limits (API Gateway
# ResourcePath spelling: "/" escaped as "~1"). Sign-in and token requests cost a
# password hash or a signature each; the rest of the API is cheap. Only those the
# app serves are set: API Gateway refuses a method setting for a missing method.
SENSITIVE_METHODS = (("/oauth/authorize", "GET"), ("/oauth/authorize", "POST"),
                     ("/account/signin", "POST"), ("/signin/second-factor", "POST"),
                     ("/device", "POST"), ("/password-reset", "POST"),
                     ("/password-reset/confirm", "POST"), ("/invitation", "POST"))
TOKEN_METHOD = ("/oauth/token", "POST")
# Stages that must have an alarm target (AlarmEmail or AlarmTopicArn).
PROD_STAGES = frozenset({"prod"})
# Pages that take a password (POST): the WAF limits each source on them.
# (and the pages that send mail or spend a mailed link).
SIGNIN_PAGES = ("/oauth/authorize", "/account/signin", "/signin/second-factor", "/device",
                "/password-reset", "/password-reset/confirm", "/invitation")
# Grants the WAF limits per source (form bodies, RFC 6749 §4.3, RFC 8628 §3.4). Not
# introspection or refresh: servers call those from one NAT address.
LIMITED_GRANTS = ("password", "urn:ietf:params:oauth:grant-type:device_code")

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


# API Gateway's regional account limits: 10,000 requests per second, a burst of
# 5,000; a method setting above them is capped by them anyway.
ACCOUNT_RATE, ACCOUNT_BURST = 10_000, 5_000


def peak_requests(stage: Stage) -> int:
    """The stage's design peak (``TESSERA_PEAK_REFRESHES_PER_SECOND``), the figure
    the purge index is sized from (chalicelib.config)."""
    return int(stage.environment.get("TESSERA_PEAK_REFRESHES_PER_SECOND", "3000"))


def throttle_defaults(peak: int) -> dict[str, int]:
    """Per-method throttling from the design peak: the token endpoint takes the peak
    of refreshes plus a quarter for the other grants, with a burst of twice the peak;
    other methods the peak; the sign-in pages (a password hash each, limited per
    source by the WAF) a tenth of it. Capped at API Gateway's account limits."""
    return {
        "token_rate": min(peak + peak // 4, ACCOUNT_RATE), "token_burst": min(2 * peak, ACCOUNT_BURST),
        "api_rate": min(peak, ACCOUNT_RATE), "api_burst": min(peak, ACCOUNT_BURST),
        "pages_rate": max(min(peak // 10, ACCOUNT_RATE), 1),
        "pages_burst": max(min(peak // 5, ACCOUNT_BURST), 1),
    }


def parameters(stage: Stage) -> dict[str, dict[str, Any]]:
    prod = stage.name in PROD_STAGES
    limits = throttle_defaults(peak_requests(stage))
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
            "Description": "E-mail address subscribed to the alarm topic"
                           + ("; prod needs it or AlarmTopicArn" if prod else "; empty: no subscription"),
        },
        "AlarmTopicArn": {
            "Type": "String", "Default": "",
            "Description": "An existing SNS topic the alarms notify instead of the stack's own topic",
        },
        "LatencyAlarmMs": {
            "Type": "Number", "Default": 1000, "MinValue": 1,
            "Description": "Alarm when the p99 latency of POST /oauth/token stays above this (ms)",
        },
        "ClientErrorAlarmRate": {
            "Type": "Number", "Default": 0.5, "MinValue": 0, "MaxValue": 1,
            "Description": "Alarm when this fraction of the API's answers stays 4xx for 15 minutes",
        },
        "WafRateLimit": {
            "Type": "Number", "Default": 300 if prod else 0, "MinValue": 0,
            "Description": "Requests per source IP per 5 minutes to the sign-in pages, and of the "
                           "password and device grants, before the WAF blocks it; 0: no web ACL",
        },
        "WafManagedRules": {
            "Type": "String", "Default": "true" if prod else "false", "AllowedValues": ["true", "false"],
            "Description": "The AWS managed IP reputation rule group on the web ACL (known bad "
                           "inputs is always on)",
        },
        "WafLogging": {
            "Type": "String", "Default": "false", "AllowedValues": ["true", "false"],
            "Description": "WAF logs to the log group aws-waf-logs-<stack functions' prefix>",
        },
        "ApiRateLimit": {
            "Type": "Number", "Default": limits["api_rate"], "MinValue": 1,
            "Description": "Steady requests per second of each API method (API Gateway throttling)",
        },
        "ApiBurstLimit": {
            "Type": "Number", "Default": limits["api_burst"], "MinValue": 1,
            "Description": "Burst of each API method (API Gateway throttling)",
        },
        "TokenRateLimit": {
            "Type": "Number", "Default": limits["token_rate"], "MinValue": 1,
            "Description": "Steady requests per second of POST /oauth/token (from the design peak)",
        },
        "TokenBurstLimit": {
            "Type": "Number", "Default": limits["token_burst"], "MinValue": 1,
            "Description": "Burst of POST /oauth/token",
        },
        "SensitiveRateLimit": {
            "Type": "Number", "Default": limits["pages_rate"], "MinValue": 1,
            "Description": "Rate per second of the sign-in pages (a password hash each)",
        },
        "SensitiveBurstLimit": {
            "Type": "Number", "Default": limits["pages_burst"], "MinValue": 1,
            "Description": "Burst of the sign-in pages",
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
        "TableDeletionProtection": {
            "Type": "String", "Default": "false", "AllowedValues": ["true", "false"],
            "Description": "Deletion protection of the tables: false on the first create (so a "
                           "failed one can roll back), true from the second deploy on",
        },
        "Tracing": {
            "Type": "String", "Default": "false", "AllowedValues": ["true", "false"],
            "Description": "AWS X-Ray tracing of the API stage and the functions (billed per trace)",
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
    "HasAlarmTopicArn": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]},
    "HasWaf": {"Fn::Not": [{"Fn::Equals": [{"Ref": "WafRateLimit"}, 0]}]},
    "HasWafManagedRules": {"Fn::Equals": [{"Ref": "WafManagedRules"}, "true"]},
    "HasWafLogging": {"Fn::And": [{"Condition": "HasWaf"}, {"Fn::Equals": [{"Ref": "WafLogging"}, "true"]}]},
    "ProtectTables": {"Fn::Equals": [{"Ref": "TableDeletionProtection"}, "true"]},
    "UseTracing": {"Fn::Equals": [{"Ref": "Tracing"}, "true"]},
    "UseSnapStart": {"Fn::Equals": [{"Ref": "SnapStart"}, "true"]},
    "ReserveApi": {"Fn::Not": [{"Fn::Equals": [{"Ref": "ApiReservedConcurrency"}, 0]}]},
    "ReserveJobs": {"Fn::Not": [{"Fn::Equals": [{"Ref": "JobsReservedConcurrency"}, 0]}]},
    "SetApiGatewayAccount": {"Fn::Equals": [{"Ref": "ConfigureApiGatewayAccount"}, "true"]},
}


def _sub(text: str) -> dict[str, str]:
    return {"Fn::Sub": text}


ALARM_ACTIONS = [{"Fn::If": ["HasAlarmTopicArn", {"Ref": "AlarmTopicArn"}, {"Ref": TOPIC_ID}]}]


def _alarm(name: str, description: str, namespace: str, metric: str, dimensions: dict[str, Any], *,
           statistic: str = "Sum", period: int = 300, threshold: Any = 1,
           evaluation_periods: int = 1) -> dict[str, Any]:
    """An alarm named ``name`` (``tessera-<stage>-...``: one per stage and account)."""
    props: dict[str, Any] = {
        "AlarmName": name,
        "AlarmDescription": description,
        "Namespace": namespace,
        "MetricName": metric,
        "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
        "Period": period,
        "EvaluationPeriods": evaluation_periods,
        "Threshold": threshold,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "TreatMissingData": "notBreaching",
        "AlarmActions": ALARM_ACTIONS,
        "OKActions": ALARM_ACTIONS,
    }
    props["ExtendedStatistic" if statistic.startswith("p") else "Statistic"] = statistic
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": props}


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
    limited = [(TOKEN_METHOD, "TokenRateLimit", "TokenBurstLimit")] + [
        (m, "SensitiveRateLimit", "SensitiveBurstLimit") for m in SENSITIVE_METHODS]
    for (path, method), rate, burst in limited:
        if method.lower() not in paths.get(path, {}):
            continue
        settings.append({
            "ResourcePath": "/" + path.replace("/", "~1"), "HttpMethod": method,
            "ThrottlingRateLimit": {"Ref": rate}, "ThrottlingBurstLimit": {"Ref": burst},
            "LoggingLevel": "ERROR", "MetricsEnabled": True, "DataTraceEnabled": False,
        })
    api["MethodSettings"] = settings
    # Named per stage: the alarms' and the dashboard's ApiName dimension.
    api["Name"] = stage.function_prefix
    api["AccessLogSetting"] = {"DestinationArn": {"Fn::GetAtt": [ACCESS_LOG_ID, "Arn"]},
                               "Format": ACCESS_LOG_FORMAT}
    api["TracingEnabled"] = {"Fn::If": ["UseTracing", True, False]}
    # A stage with execution logging fails ("CloudWatch Logs role ARN must be set")
    # unless the account's API Gateway role is set first; SAM's stage depends on the
    # API, the API on this handle, the handle on the account setting when the stack
    # makes it (a DependsOn cannot name a resource whose condition may be false).
    resources[ACCOUNT_READY_ID] = {
        "Type": "AWS::CloudFormation::WaitConditionHandle",
        "Metadata": {"ApiGatewayAccount": {"Fn::If": ["SetApiGatewayAccount", {"Ref": "ApiGatewayAccount"},
                                                      ""]}},
    }
    _depends(resources[API_ID], ACCOUNT_READY_ID)
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
    resources["WebAcl"] = _web_acl(stage)
    waf_logs = f"aws-waf-logs-{stage.function_prefix}"
    resources["WafLogGroup"] = {
        "Type": "AWS::Logs::LogGroup",
        "Condition": "HasWafLogging",
        "DeletionPolicy": "Delete",
        "UpdateReplacePolicy": "Delete",
        "Properties": {"LogGroupName": waf_logs, "RetentionInDays": stage.log_retention_days},
    }
    resources["WafLoggingConfiguration"] = {
        "Type": "AWS::WAFv2::LoggingConfiguration",
        "Condition": "HasWafLogging",
        "DependsOn": ["WafLogGroup"],
        "Properties": {
            "ResourceArn": {"Fn::GetAtt": ["WebAcl", "Arn"]},
            "LogDestinationConfigs": [_sub(f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:"
                                           f"${{AWS::AccountId}}:log-group:{waf_logs}")],
            # Credentials never reach the log: no Authorization, no cookie, no query
            # string (a PAT may ride in ?access_token=). WAF logs no body.
            "RedactedFields": [{"SingleHeader": {"Name": "authorization"}},
                               {"SingleHeader": {"Name": "cookie"}}, {"QueryString": {}}],
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


def _visibility(name: str) -> dict[str, Any]:
    return {"SampledRequestsEnabled": True, "CloudWatchMetricsEnabled": True, "MetricName": name}


def _path_ends(path: str) -> dict[str, Any]:
    # ENDS_WITH: the same rule on the custom domain (/oauth/token) and on the
    # execute-api URL (/api/oauth/token).
    return {"ByteMatchStatement": {"FieldToMatch": {"UriPath": {}}, "PositionalConstraint": "ENDS_WITH",
                                   "SearchString": path,
                                   "TextTransformations": [{"Priority": 0, "Type": "NONE"}]}}


def _is_post() -> dict[str, Any]:
    return {"ByteMatchStatement": {"FieldToMatch": {"Method": {}}, "PositionalConstraint": "EXACTLY",
                                   "SearchString": "POST",
                                   "TextTransformations": [{"Priority": 0, "Type": "NONE"}]}}


def _grant_in_body(grant: str) -> dict[str, Any]:
    return {"ByteMatchStatement": {
        "FieldToMatch": {"Body": {"OversizeHandling": "CONTINUE"}}, "PositionalConstraint": "CONTAINS",
        "SearchString": f"grant_type={grant}",
        "TextTransformations": [{"Priority": 0, "Type": "URL_DECODE"}]}}


def _or(statements: list[dict[str, Any]]) -> dict[str, Any]:
    return statements[0] if len(statements) == 1 else {"OrStatement": {"Statements": statements}}


def _web_acl(stage: Stage) -> dict[str, Any]:
    """Per-source limits where a source can cost us (a password hash per request) and
    nowhere else: the sign-in pages and the password and device grants. Introspection,
    refresh and discovery stay unlimited per source (resource servers call from one
    NAT address); API Gateway's method throttling bounds them. The managed rule
    groups are an option."""
    prefix = stage.function_prefix

    def group(name: str, priority: int) -> dict[str, Any]:
        return {"Name": name, "Priority": priority, "OverrideAction": {"None": {}},
                "Statement": {"ManagedRuleGroupStatement": {"VendorName": "AWS", "Name": name}},
                "VisibilityConfig": _visibility(f"{prefix}-{name}")}

    # Known bad inputs (Log4j lookups and the like) whenever there is a web ACL: it
    # adds no charge of its own beyond a rule's; IP reputation is the option.
    managed = [{"Fn::If": ["HasWafManagedRules", group("AWSManagedRulesAmazonIpReputationList", 0),
                           {"Ref": "AWS::NoValue"}]},
               group("AWSManagedRulesKnownBadInputsRuleSet", 1)]
    pages = {"AndStatement": {"Statements": [_is_post(), _or([_path_ends(p) for p in SIGNIN_PAGES])]}}
    grants = {"AndStatement": {"Statements": [_path_ends("/oauth/token"),
                                              _or([_grant_in_body(g) for g in LIMITED_GRANTS])]}}
    limits = [{
        "Name": name, "Priority": 10 + i, "Action": {"Block": {}},
        "Statement": {"RateBasedStatement": {"Limit": {"Ref": "WafRateLimit"}, "AggregateKeyType": "IP",
                                             "ScopeDownStatement": scope}},
        "VisibilityConfig": _visibility(f"{prefix}-{name}"),
    } for i, (name, scope) in enumerate((("signin-pages-per-ip", pages), ("password-grants-per-ip", grants)))]
    return {
        "Type": "AWS::WAFv2::WebACL",
        "Condition": "HasWaf",
        "Properties": {
            "Name": f"{prefix}-api",
            "Scope": "REGIONAL",
            "DefaultAction": {"Allow": {}},
            "VisibilityConfig": _visibility(f"{prefix}-api"),
            "Rules": [*managed, *limits],
        },
    }


def _depends(resource: dict[str, Any], *ids: str) -> None:
    current = resource.get("DependsOn", [])
    current = [current] if isinstance(current, str) else list(current)
    resource["DependsOn"] = current + [i for i in ids if i not in current]


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
    prefix = stage.function_prefix
    api_name = {"ApiName": prefix, "Stage": stage.api_stage}
    resources["Api5xxAlarm"] = _alarm(
        f"{prefix}-api-5xx", f"{prefix}: the API answered 5xx", "AWS/ApiGateway", "5XXError", api_name,
        threshold=5)
    # 4XXError's average is the fraction of answers that were 4xx.
    resources["Api4xxRateAlarm"] = _alarm(
        f"{prefix}-api-4xx-rate", f"{prefix}: a large share of the API's answers were 4xx for 15 minutes",
        "AWS/ApiGateway", "4XXError", api_name, statistic="Average",
        threshold={"Ref": "ClientErrorAlarmRate"}, evaluation_periods=3)
    path, method = TOKEN_METHOD
    resources["TokenLatencyAlarm"] = _alarm(
        f"{prefix}-token-latency-p99", f"{prefix}: p99 latency of {method} {path} above LatencyAlarmMs "
        "for 15 minutes", "AWS/ApiGateway", "Latency",
        {**api_name, "Resource": path, "Method": method}, statistic="p99",
        threshold={"Ref": "LatencyAlarmMs"}, evaluation_periods=3)
    for fid, name in functions.items():
        dims = {"FunctionName": {"Ref": fid}}
        short = name.removeprefix(f"{prefix}-") if name != prefix else "api"
        resources[f"{fid}ErrorsAlarm"] = _alarm(
            f"{prefix}-{short}-errors", f"{name}: invocations failed", "AWS/Lambda", "Errors", dims,
            threshold=1 if fid != API_FUNCTION_ID else 5)
        resources[f"{fid}ThrottlesAlarm"] = _alarm(
            f"{prefix}-{short}-throttles", f"{name}: invocations throttled", "AWS/Lambda", "Throttles", dims)
    for tid in table_ids:
        for metric in ("ReadThrottleEvents", "WriteThrottleEvents"):
            kind = metric[:-14].lower()
            resources[f"{tid}{metric.removesuffix('Events')}Alarm"] = _alarm(
                f"{prefix}-{tid}-{kind}-throttles", f"{prefix}: DynamoDB throttled {kind}s",
                "AWS/DynamoDB", metric, {"TableName": {"Ref": tid}})
    resources["JobsFailureQueueAlarm"] = _alarm(
        f"{prefix}-jobs-failed", f"{prefix}: a scheduled job failed for good (see the failure queue)",
        "AWS/SQS", "ApproximateNumberOfMessagesVisible",
        {"QueueName": {"Fn::GetAtt": [iam.FAILURE_QUEUE_ID, "QueueName"]}}, statistic="Maximum")


def metric_namespace(stage: Stage) -> str:
    return f"Tessera/{stage.function_prefix}"


def _audit_metrics(resources: dict[str, Any], stage: Stage, api_log_group: str) -> None:
    """Sign-in failures and lockouts, counted from the audit lines of the API
    function's log (one JSON object per line, chalicelib.audit)."""
    for metric, event in AUDIT_METRICS.items():
        resources[f"{metric}MetricFilter"] = {
            "Type": "AWS::Logs::MetricFilter",
            "Properties": {
                "LogGroupName": {"Ref": api_log_group},
                "FilterPattern": f'{{ $.event = "{event}" }}',
                "MetricTransformations": [{"MetricNamespace": metric_namespace(stage), "MetricName": metric,
                                           "MetricValue": "1", "DefaultValue": 0, "Unit": "Count"}],
            },
        }


def dashboard_body(stage: Stage, routes: list[tuple[str, str]], functions: dict[str, str],
                   tables: list[str]) -> dict[str, Any]:
    """The figures an operator watches; ``${AWS::Region}`` left for Fn::Sub."""
    api = ["ApiName", stage.function_prefix, "Stage", stage.api_stage]

    def widget(title: str, metrics: list[list[Any]], y: int, x: int = 0, stat: str = "Sum",
               width: int = 12) -> dict[str, Any]:
        return {"type": "metric", "x": x, "y": y, "width": width, "height": 6,
                "properties": {"title": title, "region": "${AWS::Region}", "stat": stat, "period": 300,
                               "view": "timeSeries", "metrics": metrics}}

    per_route = [["AWS/ApiGateway", "Latency", *api, "Resource", p, "Method", m] for p, m in routes]
    ns = metric_namespace(stage)
    return {"widgets": [
        widget("Requests", [["AWS/ApiGateway", "Count", *api]], 0),
        widget("Errors (4xx, 5xx)",
               [["AWS/ApiGateway", "4XXError", *api], ["AWS/ApiGateway", "5XXError", *api]], 0, 12),
        widget("Latency p50 per route (ms)", per_route, 6, stat="p50"),
        widget("Latency p99 per route (ms)", per_route, 6, 12, stat="p99"),
        widget("Throttles (Lambda, DynamoDB)",
               [["AWS/Lambda", "Throttles", "FunctionName", name] for name in functions.values()]
               + [["AWS/DynamoDB", f"{kind}ThrottleEvents", "TableName", f"{stage.table_prefix}{t}"]
                  for t in tables for kind in ("Read", "Write")], 12),
        widget("Sign-in failures and lockouts", [[ns, metric] for metric in AUDIT_METRICS], 12, 12),
    ]}


def _dashboard(resources: dict[str, Any], stage: Stage, functions: dict[str, str]) -> None:
    import json

    from chalicelib.storage.schema import TABLES

    paths = resources[API_ID]["Properties"]["DefinitionBody"].get("paths", {})
    routes = [(p, m.upper()) for p, ops in sorted(paths.items()) for m in sorted(ops)
              if not m.startswith("x-") and m != "options"]
    names = {fid: iam.function_name(stage, name) for fid, name in functions.items()}
    body = dashboard_body(stage, routes, names, list(TABLES))
    resources[DASHBOARD_ID] = {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {"DashboardName": stage.function_prefix,
                       "DashboardBody": {"Fn::Sub": json.dumps(body, separators=(",", ":"))}},
    }


def _tracing(resources: dict[str, Any], functions: dict[str, str]) -> None:
    """X-Ray on every function when ``Tracing`` is true. X-Ray's write actions take
    no resource (its service authorization reference): the one statement on "*" of
    the stack, attached only while tracing is on."""
    roles = []
    for fid in functions:
        props = resources[fid]["Properties"]
        props["Tracing"] = {"Fn::If": ["UseTracing", "Active", "PassThrough"]}
        role = props.get("Role")
        if isinstance(role, dict) and "Fn::GetAtt" in role:
            roles.append({"Ref": role["Fn::GetAtt"][0]})
    resources["TracingPolicy"] = {
        "Type": "AWS::IAM::Policy",
        "Condition": "UseTracing",
        "Properties": {
            "PolicyName": "xray-write",
            "Roles": roles,
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                "Sid": "XRayWrite", "Effect": "Allow",
                "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "Resource": "*"}]},
        },
    }


def rules(stage: Stage) -> dict[str, Any]:
    """CloudFormation ``Rules``: a prod stack is refused without an alarm target."""
    if stage.name not in PROD_STAGES:
        return {}
    return {"AlarmsReachSomeone": {"Assertions": [{
        "Assert": {"Fn::Or": [{"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]},
                              {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}]}]},
        "AssertDescription": "A prod stack needs AlarmEmail or AlarmTopicArn: alarms must reach someone",
    }]}}


def add_production_resources(template: dict[str, Any], stage: Stage,
                             functions: dict[str, str], table_ids: list[str],
                             log_groups: dict[str, str] | None = None) -> None:
    """``functions``: logical id -> Chalice function name, for every function;
    ``log_groups``: function logical id -> its log group's logical id."""
    resources: dict[str, Any] = template["Resources"]
    template.setdefault("Parameters", {}).update(parameters(stage))
    template.setdefault("Conditions", {}).update(CONDITIONS)
    if rules(stage):
        template.setdefault("Rules", {}).update(rules(stage))
    resources.update(_secret(stage))
    _api_gateway(resources, stage)
    _snapstart(resources)
    jobs = {fid: name for fid, name in functions.items() if fid != API_FUNCTION_ID}
    _failure_path(resources, stage, jobs)
    _alarms(resources, stage, functions, table_ids)
    if log_groups and API_FUNCTION_ID in log_groups:
        _audit_metrics(resources, stage, log_groups[API_FUNCTION_ID])
    _dashboard(resources, stage, functions)
    _tracing(resources, functions)
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
