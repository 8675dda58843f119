"""Domain rules. Services take their stores and a clock; they never import boto3."""
