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

const EVENT_TYPE = 'ducklm.common.v1.Event';

// The descriptor of a message type named from within ducklm.common.v1 ("StatusChanged") or in
// full ("google.protobuf.Struct"), from the package definition proto-loader built.
function descriptor(types, name, scope = 'ducklm.common.v1') {
  const entry = types[name] || types[`${scope}.${name}`];
  return entry && entry.type;
}

// A decoded message as plain JavaScript, field by field from its descriptor: Struct and Value
// fields become objects and values, int64 fields Numbers, nested messages the same again.
function plain(message, type, types) {
  const result = {};
  for (const field of type.field) {
    const value = message[field.name];
    const convert = (item) => {
      if (field.typeName === 'google.protobuf.Struct') return fromStruct(item);
      if (field.typeName === 'google.protobuf.Value') return fromValue(item);
      if (field.type === 'TYPE_MESSAGE') return item ? plain(item, descriptor(types, field.typeName), types) : null;
      if (field.type === 'TYPE_INT64' || field.type === 'TYPE_UINT64') return Number(item || 0);
      return item;
    };
    if (field.proto3Optional && (value === null || value === undefined)) result[field.name] = null;
    else result[field.name] = field.label === 'LABEL_REPEATED' ? (value || []).map(convert) : convert(value);
  }
  return result;
}

// `types`: the package definition (DuckLMClient passes its own); with it an event carries its
// typed `payload`, the fields the proto defines for its type (camelCase, as everywhere in this
// client: `payload.approvalId`). `data` is the same payload as the server's plain copy.
function event(message, types) {
  const field = message.payload; // with `oneofs: true`, the name of the payload field that is set
  const type = types && field ? descriptor(types, descriptor(types, EVENT_TYPE).field.find((f) => f.name === field).typeName) : null;
  return {
    taskId: message.taskId,
    seq: Number(message.seq || 0),
    type: enumWord(message.type, 'EVENT_TYPE_'),
    created: time(message.createTime),
    data: fromStruct(message.data),
    payload: type && message[field] ? plain(message[field], type, types) : null,
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
