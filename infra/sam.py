"""The packaged template as plain CloudFormation: ``chalice package`` with the merge template,
then AWS's own SAM translator (``aws-sam-translator``, the library ``sam`` and CloudFormation's
``AWS::Serverless`` transform run).

    python -m infra.sam build/package/sam.json build/package/cfn.json --bucket <artifact-bucket>

What the deploy check (``tests/static/test_infra_deploy.py``) uses: ``package`` builds the
package for a stage, ``translate`` expands ``AWS::Serverless::*`` into the resources CloudFormation
creates (functions, roles, the REST API with its stage and deployment, the schedules' rules and
permissions), with the local artifacts (``./deployment.zip``, ``./layer-deployment.zip``) named as
S3 objects, as ``aws cloudformation package`` would after uploading them.

``MOTO_GAPS`` records what moto's CloudFormation (the pinned moto) cannot create or drops, and so
what the deploy check verifies on the translated template instead (with every reference resolved
against what moto did create).
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
from pathlib import Path

from infra import build, bytecode

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}

#: resource type -> why moto (5.2.5) cannot create it from a template
MOTO_CANNOT_CREATE = {
    "AWS::CloudWatch::Alarm": "no CloudFormation model in moto",
    "AWS::ApiGateway::Stage": "no CloudFormation model in moto (throttling, X-Ray live on the stage)",
    "AWS::ApiGateway::Deployment": "moto does not import a Swagger 2.0 body (Chalice's) into methods, so it "
    "refuses the deployment: 'The REST API doesn't contain any methods'",
}
#: resource type -> properties moto's CloudFormation creates the resource without
MOTO_DROPS = {
    "AWS::Lambda::Function": ("TracingConfig", "DeadLetterConfig", "Layers", "Architectures"),
    "AWS::StepFunctions::StateMachine": ("DefinitionSubstitutions", "TracingConfiguration"),
    "AWS::DynamoDB::Table": ("TimeToLiveSpecification", "PointInTimeRecoverySpecification"),
    "AWS::ApiGateway::RestApi": ("Body",),
}


class PackageError(RuntimeError):
    """``chalice package`` failed; ``output`` holds what it printed."""

    def __init__(self, output: str):
        super().__init__(output[-4000:])
        self.output = output


def package(stage: str, out_dir: Path | str) -> Path:
    """``make package``'s steps into ``out_dir`` (merge template, ``chalice package``, bytecode in the
    zips: ``infra.bytecode``); returns the path of ``sam.json``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    merge = out_dir / "resources.json"
    merge.write_text(json.dumps(build.build(stage=stage), indent=2), encoding="utf-8")
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        env.pop(name, None)
    chalice = Path(sys.executable).parent / "chalice"
    result = subprocess.run(
        [str(chalice), "package", "--stage", stage, "--pkg-format", "cloudformation",
         "--merge-template", str(merge), str(out_dir / "package")],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )
    if result.returncode != 0:
        raise PackageError(result.stdout + result.stderr)
    for artifact in sorted((out_dir / "package").glob("*.zip")):  # the function code and the layer
        bytecode.add_bytecode(artifact)
    return out_dir / "package" / "sam.json"


class _NoManagedPolicies:
    """The translator asks for AWS managed policy ARNs only for SAM ``Policies``; Chalice gives
    every function its own ``Role``, so there are none to look up (and no IAM call is made)."""

    def load(self) -> dict:
        return {}


def with_s3_artifacts(sam: dict, bucket: str, prefix: str = "") -> tuple[dict, dict[str, str]]:
    """``sam`` with each local ``CodeUri`` / ``ContentUri`` replaced by an S3 location in ``bucket``;
    also ``{local file name: S3 key}`` to upload."""
    sam = copy.deepcopy(sam)
    uploads: dict[str, str] = {}
    for resource in sam["Resources"].values():
        prop = ARTIFACTS.get(resource["Type"])
        if prop is None:
            continue
        local = resource["Properties"][prop]
        if isinstance(local, str) and not local.startswith("s3://"):
            name = Path(local).name
            uploads[name] = prefix + name
            resource["Properties"][prop] = {"Bucket": bucket, "Key": prefix + name}
    return sam, uploads


def translate(sam: dict, parameters: dict | None = None) -> dict:
    """The SAM template as plain CloudFormation (needs ``AWS_DEFAULT_REGION``; no AWS call)."""
    from samtranslator.translator.transform import transform

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return transform(copy.deepcopy(sam), parameters or {}, _NoManagedPolicies())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.sam", description=__doc__.splitlines()[0])
    parser.add_argument("sam_path")
    parser.add_argument("out_path")
    parser.add_argument("--bucket", required=True, help="the artifact bucket the zips are uploaded to")
    args = parser.parse_args(argv)
    sam, uploads = with_s3_artifacts(json.loads(Path(args.sam_path).read_text(encoding="utf-8")), args.bucket)
    Path(args.out_path).write_text(json.dumps(translate(sam), indent=2) + "\n", encoding="utf-8")
    for name, key in uploads.items():
        print(f"upload {Path(args.sam_path).parent / name} to s3://{args.bucket}/{key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
