"""Deploy a packaged stage: upload, change set, review, execute (SPEC §7).

    python -m deploy.deploy --stage prod --bucket tessera-artifacts-<account> \\
        --parameter DomainName=id.example.com --parameter AlarmEmail=ops@example.com

What ``aws cloudformation package`` and ``aws cloudformation deploy`` do, in one
command that cannot be run without its artifact bucket:

1. the function and layer zips of ``--out`` (``python -m deploy.package``) go to
   the bucket under their SHA-256, and the template's local paths become those
   S3 locations;
2. the template goes to the bucket too and CloudFormation reads it from there
   (``TemplateURL``): the stack's template is over the 51,200 bytes
   CloudFormation accepts inline;
3. a change set is created (``CREATE`` for a new stack, ``UPDATE`` otherwise) and
   its changes printed; one that replaces or removes a table, the signing-key
   secret or its key is refused unless ``--allow-replacement``; with
   ``--no-execute`` it stops there for review;
4. the change set is executed and the command waits for the stack.

Two rules of a first create (deploy/README.md): a stack whose first create
failed (``ROLLBACK_COMPLETE``: nothing in it holds data) is deleted first, so the
retry starts clean; and the tables' deletion protection
(``TableDeletionProtection``) is off while the stack is being created and turned
on by every later deploy, so a failed first create can still roll back.
A prod stage is refused without an alarm target (``AlarmEmail`` or
``AlarmTopicArn``); the template refuses it too (its ``Rules``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INLINE_TEMPLATE_LIMIT = 51_200           # bytes CloudFormation takes as TemplateBody
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"]
# Resources whose replacement or removal loses data (tables) or every signing key.
PRECIOUS_TYPES = frozenset({"AWS::DynamoDB::Table", "AWS::SecretsManager::Secret", "AWS::KMS::Key"})
NEEDS_ALARM_TARGET = frozenset({"prod"})
STUB_LAYER_ZIP = "layer-stub.zip"
_FAILED_FIRST_CREATE = frozenset({"ROLLBACK_COMPLETE", "ROLLBACK_FAILED"})


class DeployError(Exception):
    """The stage cannot be deployed as asked."""


@dataclass
class Result:
    stack_name: str
    change_set_type: str
    changes: list[dict[str, Any]] = field(default_factory=list)
    executed: bool = False
    outputs: dict[str, str] = field(default_factory=dict)
    template_url: str = ""


def parse_parameters(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise DeployError(f"--parameter {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def packaged_template(template: dict[str, Any], out: Path, bucket: str, prefix: str,
                      upload: Callable[[Path, str], None]) -> dict[str, Any]:
    """``aws cloudformation package``: every local zip the template names is uploaded
    (``upload(path, key)``) and replaced by its S3 location."""
    packaged = json.loads(json.dumps(template))
    done: dict[str, str] = {}

    def key_of(local: str) -> str:
        path = out / local.removeprefix("./")
        if not path.is_file():
            raise DeployError(f"{path} is missing: run python -m deploy.package first")
        if local not in done:
            done[local] = f"{prefix}/{_sha256(path)}-{path.name}"
            upload(path, done[local])
        return done[local]

    for res in packaged["Resources"].values():
        props = res.get("Properties", {})
        if res["Type"] == "AWS::Serverless::Function" and isinstance(props.get("CodeUri"), str) \
                and not props["CodeUri"].startswith("s3://"):
            props["CodeUri"] = f"s3://{bucket}/{key_of(props['CodeUri'])}"
        elif res["Type"] == "AWS::Lambda::LayerVersion" and isinstance(props.get("Content"), str):
            props["Content"] = {"S3Bucket": bucket, "S3Key": key_of(props["Content"])}
    return packaged


def check_parameters(stage: str, template: dict[str, Any], given: dict[str, str],
                     previous: dict[str, str]) -> None:
    unknown = sorted(set(given) - set(template.get("Parameters", {})))
    if unknown:
        raise DeployError(f"the template has no parameter {', '.join(unknown)}")
    if stage in NEEDS_ALARM_TARGET:
        merged = {**previous, **given}
        if not (merged.get("AlarmEmail") or merged.get("AlarmTopicArn")):
            raise DeployError(f"stage {stage}: alarms must reach someone; give "
                              "--parameter AlarmEmail=<address> or --parameter AlarmTopicArn=<SNS topic ARN>")


def _stack_status(cfn: Any, name: str) -> tuple[str | None, dict[str, str]]:
    from botocore.exceptions import ClientError

    try:
        (found,) = cfn.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None, {}
        raise
    params = {p["ParameterKey"]: p.get("ParameterValue", "") for p in found.get("Parameters", [])}
    return str(found["StackStatus"]), params


def _wait(cfn: Any, waiter: str, **kwargs: Any) -> None:
    from botocore.exceptions import WaiterError

    try:
        cfn.get_waiter(waiter).wait(**kwargs, WaiterConfig={"Delay": 5, "MaxAttempts": 720})
    except WaiterError as exc:
        raise DeployError(f"{waiter}: {exc}") from exc


def deploy(stage: str, out: Path, bucket: str, *, stack_name: str | None = None,
           parameters: dict[str, str] | None = None, region: str | None = None,
           execute: bool = True, allow_replacement: bool = False, allow_stub_layer: bool = False,
           session: Any = None, log: Callable[[str], None] = print) -> Result:
    """Upload ``out`` to ``bucket`` and create or update the stage's stack through a change set."""
    import boto3

    session = session or boto3.session.Session(region_name=region)
    s3, cfn = session.client("s3"), session.client("cloudformation")
    given = dict(parameters or {})
    name = stack_name or f"tessera-{stage}"
    template_path = out / "template.json"
    if not template_path.is_file():
        raise DeployError(f"{template_path} is missing: run python -m deploy.package --stage {stage} "
                          f"--out {out} first")
    template: dict[str, Any] = json.loads(template_path.read_text())
    if STUB_LAYER_ZIP in template_path.read_text() and not allow_stub_layer:
        raise DeployError(f"{out} was packaged with --stub-layer (no dependencies): package it with "
                          "--layer-zip or --build-layer")

    status, previous = _stack_status(cfn, name)
    if status in _FAILED_FIRST_CREATE:
        # Its first create failed and rolled back: tables and secret were removed
        # with it (RetainExceptOnCreate), nothing holds data. Start clean.
        log(f"{name} is {status} (its first create failed): deleting it before creating it again")
        cfn.delete_stack(StackName=name)
        _wait(cfn, "stack_delete_complete", StackName=name)
        status, previous = None, {}
    elif status is not None and status.endswith("_IN_PROGRESS"):
        raise DeployError(f"{name} is {status}: wait for it to finish")
    check_parameters(stage, template, given, previous)
    # Deletion protection only once the stack exists: a failed first create must be
    # able to delete the tables it made (deploy/README.md, "A first create").
    if "TableDeletionProtection" in template.get("Parameters", {}):
        given.setdefault("TableDeletionProtection", "false" if status is None else "true")

    prefix = f"tessera-{stage}"

    def upload(path: Path, key: str) -> None:
        log(f"upload {path.name} -> s3://{bucket}/{key}")
        s3.upload_file(str(path), bucket, key)

    packaged = packaged_template(template, out, bucket, prefix, upload)
    body = json.dumps(packaged, separators=(",", ":"))
    (out / "packaged.json").write_text(body + "\n")
    template_key = f"{prefix}/{hashlib.sha256(body.encode()).hexdigest()}-template.json"
    s3.put_object(Bucket=bucket, Key=template_key, Body=body.encode())
    template_url = f"https://{bucket}.s3.{session.region_name}.amazonaws.com/{template_key}"
    log(f"template ({len(body.encode())} bytes; inline limit {INLINE_TEMPLATE_LIMIT}) -> {template_url}")

    change_type = "CREATE" if status is None else "UPDATE"
    cfn_params: list[dict[str, Any]] = [{"ParameterKey": k, "ParameterValue": v}
                                        for k, v in sorted(given.items())]
    if status is not None:
        cfn_params += [{"ParameterKey": k, "UsePreviousValue": True}
                       for k in sorted(previous) if k not in given and k in template.get("Parameters", {})]
    change_set = f"deploy-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}"
    made = cfn.create_change_set(StackName=name, ChangeSetName=change_set, ChangeSetType=change_type,
                                 TemplateURL=template_url, Parameters=cfn_params,
                                 Capabilities=CAPABILITIES)
    change_set_id = made["Id"]
    result = Result(name, change_type, template_url=template_url)
    described = _describe_change_set(cfn, change_set_id, name)
    if described is None:
        log("no changes")
        return result
    result.changes = [c.get("ResourceChange", {}) for c in described.get("Changes", [])]
    precious = []
    for change in result.changes:
        log(f"{change.get('Action', '?'):8} {change.get('LogicalResourceId', '?')} "
            f"({change.get('ResourceType', '?')}) replacement={change.get('Replacement', '-')}")
        if change.get("ResourceType") in PRECIOUS_TYPES and (
                change.get("Action") == "Remove" or change.get("Replacement") in ("True", "Conditional")):
            precious.append(change.get("LogicalResourceId", "?"))
    if precious and not allow_replacement:
        cfn.delete_change_set(ChangeSetName=change_set_id, StackName=name)
        raise DeployError(f"the change set would replace or remove {', '.join(precious)} (data or "
                          "signing keys): see deploy/README.md, 'Upgrades'; --allow-replacement to go on")
    if not execute:
        log(f"change set {change_set} left for review (aws cloudformation describe-change-set "
            f"--stack-name {name} --change-set-name {change_set})")
        return result
    cfn.execute_change_set(ChangeSetName=change_set_id, StackName=name)
    _wait(cfn, "stack_create_complete" if change_type == "CREATE" else "stack_update_complete",
          StackName=name)
    result.executed = True
    (stack,) = cfn.describe_stacks(StackName=name)["Stacks"]
    result.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    for key, value in sorted(result.outputs.items()):
        log(f"{key}: {value}")
    return result


def _describe_change_set(cfn: Any, change_set_id: str, name: str) -> dict[str, Any] | None:
    """The change set once created; None when it holds no change."""
    from botocore.exceptions import WaiterError

    try:
        cfn.get_waiter("change_set_create_complete").wait(
            ChangeSetName=change_set_id, StackName=name, WaiterConfig={"Delay": 5, "MaxAttempts": 120})
    except WaiterError:
        pass
    described: dict[str, Any] = cfn.describe_change_set(ChangeSetName=change_set_id, StackName=name)
    if described.get("Status") == "FAILED":
        reason = str(described.get("StatusReason", ""))
        if "didn't contain changes" in reason or "No updates" in reason:
            cfn.delete_change_set(ChangeSetName=change_set_id, StackName=name)
            return None
        raise DeployError(f"change set failed: {reason}")
    return described


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.deploy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage", required=True)
    parser.add_argument("--bucket", required=True, help="S3 bucket for the zips and the template")
    parser.add_argument("--out", type=Path, help="what deploy.package built (default: build/<stage>)")
    parser.add_argument("--stack-name", help="default: tessera-<stage>")
    parser.add_argument("--region",
                        default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION"))
    parser.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE",
                        help="a template parameter (repeat); others keep their previous or default value")
    parser.add_argument("--no-execute", action="store_true", help="create the change set and stop")
    parser.add_argument("--allow-replacement", action="store_true",
                        help="execute even if a table, the secret or its key would be replaced")
    parser.add_argument("--allow-stub-layer", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        deploy(args.stage, args.out or Path("build") / args.stage, args.bucket,
               stack_name=args.stack_name, parameters=parse_parameters(args.parameter),
               region=args.region, execute=not args.no_execute,
               allow_replacement=args.allow_replacement, allow_stub_layer=args.allow_stub_layer)
    except DeployError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
