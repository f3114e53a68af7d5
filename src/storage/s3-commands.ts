// The only S3 commands the storage layer sends. s3.ts imports this module, not '@aws-sdk/client-s3', with
// import(): a bundler must keep every export of a dynamically imported namespace, and the SDK's namespace
// holds all ~100 operations (their schemas, the aggregated S3 client, the waiters). Through this module
// the Lambda bundle keeps these four.
export { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
