'use strict';
// Messages as @grpc/proto-loader decodes them -> plain JavaScript values, and back for Struct.
// Enums arrive as names ("TASK_STATUS_COMPLETED") and become lower-case words ("completed"),
// the same words the event log and the gateway use; int64 arrives as a string and becomes a Number.

function enumWord(name, prefix) {
  if (typeof name !== 'string') return 'unspecified';
  return name.startsWith(prefix) ? name.slice(prefix.length).toLowerCase() : name.toLowerCase();
}

function fromValue(value) {
  if (!value || !value.kind) return null;
  switch (value.kind) {
    case 'nullValue': return null;
    case 'numberValue': return value.numberValue;
    case 'stringValue': return value.stringValue;
    case 'boolValue': return value.boolValue;
    case 'structValue': return fromStruct(value.structValue);
    case 'listValue': return (value.listValue.values || []).map(fromValue);
    default: return null;
  }
}

function fromStruct(struct) {
  const result = {};
  for (const [key, value] of Object.entries((struct && struct.fields) || {})) result[key] = fromValue(value);
  return result;
}

function toValue(value) {
  if (value === null || value === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof value === 'number') return { numberValue: value };
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'boolean') return { boolValue: value };
  if (Array.isArray(value)) return { listValue: { values: value.map(toValue) } };
  return { structValue: toStruct(value) };
}

function toStruct(object) {
  const fields = {};
  for (const [key, value] of Object.entries(object || {})) fields[key] = toValue(value);
  return { fields };
}

function time(stamp) {
  if (!stamp) return null;
  const seconds = Number(stamp.seconds || 0);
  const nanos = Number(stamp.nanos || 0);
  if (!seconds && !nanos) return null;
  return new Date(seconds * 1000 + Math.floor(nanos / 1e6));
}

function task(message) {
  const usage = message.usage || {};
  return {
    id: message.id,
    status: enumWord(message.status, 'TASK_STATUS_'),
    title: message.title,
    created: time(message.createTime),
    updated: time(message.updateTime),
    lastReply: message.lastReply,
    error: message.error,
    steps: message.steps,
    usage: {
      promptTokens: Number(usage.promptTokens || 0),
      completionTokens: Number(usage.completionTokens || 0),
      cachedPromptTokens: Number(usage.cachedPromptTokens || 0),
    },
    pendingApprovalId: message.pendingApprovalId,
  };
}

function event(message) {
  return {
    taskId: message.taskId,
    seq: Number(message.seq || 0),
    type: enumWord(message.type, 'EVENT_TYPE_'),
    created: time(message.createTime),
    data: fromStruct(message.data),
  };
}

function approval(message) {
  return {
    id: message.id,
    taskId: message.taskId,
    tool: message.toolName,
    arguments: fromStruct(message.arguments),
    state: enumWord(message.state, 'APPROVAL_STATE_'),
    scope: enumWord(message.scope, 'APPROVAL_SCOPE_'),
    actionHash: message.actionHash,
    created: time(message.createTime),
    decided: time(message.decideTime),
    expires: time(message.expireTime),
    decidedBy: message.decidedBy,
    reason: message.reason,
    pattern: message.pattern || '',
  };
}

function skill(message) {
  return {
    name: message.name,
    description: message.description,
    allowedTools: message.allowedTools || [],
    body: message.body,
    files: message.files || [],
  };
}

function memory(message) {
  return {
    id: message.id,
    text: message.text,
    taskId: message.taskId,
    kind: message.kind,
    tags: message.tags || [],
    metadata: fromStruct(message.metadata),
    created: time(message.createTime),
  };
}

module.exports = { enumWord, fromStruct, toStruct, time, task, event, approval, skill, memory };
