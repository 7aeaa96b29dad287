'use strict';
// DuckLM from Node.js: a promise-based client over the gRPC API, built at run time from the
// repository's .proto files with @grpc/proto-loader — no generated code, the protos are the API.
//
//   const { DuckLMClient } = require('ducklm-client');
//   const client = new DuckLMClient();            // addresses from DUCKLM_*_ADDRESS or defaults
//   const { reply } = await client.chat('Hello!');
//   for await (const event of client.streamChat('Tell me more')) { ... }
//   client.close();

const fs = require('node:fs');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const convert = require('./convert');

const DEFAULT_ADDRESSES = {
  runtime: '127.0.0.1:50051',
  tools: '127.0.0.1:50052',
  skills: '127.0.0.1:50053',
  memory: '127.0.0.1:50054',
};
const PROTO_FILES = [
  'ducklm/runtime/v1/runtime.proto',
  'ducklm/approvals/v1/approvals.proto',
  'ducklm/tools/v1/tools.proto',
  'ducklm/skills/v1/skills.proto',
  'ducklm/memory/v1/memory.proto',
];
const REST_STATUSES = new Set(['waiting_approval', 'completed', 'failed', 'cancelled']);
const CHAT_TIMEOUT_MS = 600_000;
const CALL_TIMEOUT_MS = 30_000;

// A failed call: `code` is the gRPC status name ("NOT_FOUND"), `reason` the service's
// machine-readable reason (metadata `ducklm-error-reason`, e.g. "APPROVAL_REQUIRED") or "".
class DuckLMError extends Error {
  constructor(message, { code, reason, details, service, method }) {
    super(message);
    this.name = 'DuckLMError';
    Object.assign(this, { code, reason, details, service, method });
  }
}

function statusName(code) {
  return Object.keys(grpc.status).find((name) => grpc.status[name] === code) || 'UNKNOWN';
}

function toError(error, service, method, address) {
  const code = statusName(error.code);
  const reasons = error.metadata ? error.metadata.get('ducklm-error-reason') : [];
  const reason = reasons.length ? String(reasons[0]) : '';
  const hint = code === 'UNAVAILABLE' ? ` Is the ${service} service running at ${address}?` : '';
  const label = reason ? ` [${reason}]` : '';
  return new DuckLMError(`${service} ${method} failed with ${code}${label}: ${error.details || 'no details'}.${hint}`,
    { code, reason, details: error.details || '', service, method });
}

function loadPackages(protoRoot) {
  const definition = protoLoader.loadSync(PROTO_FILES, {
    includeDirs: [protoRoot],
    keepCase: false,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return { ducklm: grpc.loadPackageDefinition(definition).ducklm, types: definition };
}

// The human's approver credential, where the launcher leaves it; '' if none (deciding then says so).
function approverToken(env) {
  if (env.DUCKLM_APPROVER_TOKEN) return env.DUCKLM_APPROVER_TOKEN;
  const file = env.DUCKLM_APPROVER_TOKEN_FILE || path.join(env.DUCKLM_DATA_DIR || 'data', 'approver.token');
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch (error) {
    if (env.DUCKLM_APPROVER_TOKEN_FILE) throw error;
    return '';
  }
}

class DuckLMClient {
  // options: {runtime, tools, skills, memory} addresses, `token` (DUCKLM_GRPC_TOKEN), `caFile`
  // (DUCKLM_GRPC_TLS_CA: use TLS), `protoRoot` (default: the repository's protos/ folder),
  // `approverToken` (DUCKLM_APPROVER_TOKEN, the file DUCKLM_APPROVER_TOKEN_FILE, or
  // $DUCKLM_DATA_DIR/approver.token as `make run` writes it): sent with approve and deny only.
  constructor(options = {}) {
    const env = process.env;
    this.addresses = {};
    for (const service of Object.keys(DEFAULT_ADDRESSES)) {
      this.addresses[service] = options[service] || env[`DUCKLM_${service.toUpperCase()}_ADDRESS`] || DEFAULT_ADDRESSES[service];
    }
    const token = options.token !== undefined ? options.token : env.DUCKLM_GRPC_TOKEN || '';
    this.metadata = new grpc.Metadata();
    if (token) this.metadata.set('authorization', `Bearer ${token}`);
    this.approverMetadata = this.metadata.clone();
    this.approverMetadata.set('ducklm-approver-token', options.approverToken !== undefined ? options.approverToken : approverToken(env));
    this.approverMetadata.set('ducklm-approver-via', 'node');
    const { ducklm, types } = loadPackages(options.protoRoot || path.resolve(__dirname, '..', '..', '..', 'protos'));
    const caFile = options.caFile || env.DUCKLM_GRPC_TLS_CA || '';
    const credentials = caFile ? grpc.credentials.createSsl(fs.readFileSync(caFile)) : grpc.credentials.createInsecure();
    this.types = types;
    this.stubs = {
      runtime: new ducklm.runtime.v1.RuntimeService(this.addresses.runtime, credentials),
      approvals: new ducklm.approvals.v1.ApprovalsService(this.addresses.tools, credentials),
      skills: new ducklm.skills.v1.SkillsService(this.addresses.skills, credentials),
      memory: new ducklm.memory.v1.MemoryService(this.addresses.memory, credentials),
    };
  }

  close() {
    for (const stub of Object.values(this.stubs)) stub.close();
  }

  _home(api) {
    return api === 'approvals' ? 'tools' : api;
  }

  _unary(api, method, request, timeoutMs = CALL_TIMEOUT_MS, metadata = this.metadata) {
    const service = this._home(api);
    return new Promise((resolve, reject) => {
      this.stubs[api][method](request, metadata, { deadline: Date.now() + timeoutMs }, (error, response) => {
        if (error) reject(toError(error, service, method, this.addresses[service]));
        else resolve(response);
      });
    });
  }

  async *_stream(api, method, request, timeoutMs) {
    const service = this._home(api);
    const options = timeoutMs ? { deadline: Date.now() + timeoutMs } : {};
    const call = this.stubs[api][method](request, this.metadata, options);
    try {
      for await (const message of call) yield message;
    } catch (error) {
      throw toError(error, service, method, this.addresses[service]);
    } finally {
      call.cancel();
    }
  }

  // -- chat and tasks ------------------------------------------------------------------------

  // Sends a message and waits until the task rests. Returns {task, reply}.
  async chat(message, { taskId = '', skill = '', timeoutMs = CHAT_TIMEOUT_MS } = {}) {
    const response = await this._unary('runtime', 'Chat', { message, taskId, skill }, timeoutMs);
    return { task: convert.task(response.task), reply: response.reply };
  }

  // Sends a message and yields the task's events (live `model_token` events included) until it rests.
  async *streamChat(message, { taskId = '', skill = '', timeoutMs = CHAT_TIMEOUT_MS } = {}) {
    for await (const event of this._stream('runtime', 'StreamChat', { message, taskId, skill }, timeoutMs)) {
      yield convert.event(event, this.types);
    }
  }

  async getTask(taskId) {
    return convert.task(await this._unary('runtime', 'GetTask', { taskId }));
  }

  async listTasks({ status = '', pageSize = 50 } = {}) {
    const request = { pageSize, status: status ? `TASK_STATUS_${status.toUpperCase()}` : 'TASK_STATUS_UNSPECIFIED' };
    return (await this._unary('runtime', 'ListTasks', request)).tasks.map(convert.task);
  }

  async listEvents(taskId) {
    const events = [];
    let pageToken = '';
    do {
      const response = await this._unary('runtime', 'ListTaskEvents', { taskId, pageSize: 1000, pageToken });
      events.push(...response.events.map((event) => convert.event(event, this.types)));
      pageToken = response.nextPageToken;
    } while (pageToken);
    return events;
  }

  // Events after `afterSeq`, then new ones; ends when the task rests unless `follow`.
  async *streamEvents(taskId, { afterSeq = 0, follow = false, timeoutMs = 0 } = {}) {
    const request = { taskId, afterSeq: String(afterSeq), follow };
    for await (const event of this._stream('runtime', 'StreamTaskEvents', request, timeoutMs)) {
      yield convert.event(event, this.types);
    }
  }

  // Events after `afterSeq` until the task next rests (e.g. after approving).
  async *streamUntilRest(taskId, { afterSeq, timeoutMs = CHAT_TIMEOUT_MS }) {
    for await (const event of this.streamEvents(taskId, { afterSeq, follow: true, timeoutMs })) {
      yield event;
      if (event.type === 'status_changed' && REST_STATUSES.has(event.payload.to)) return;
    }
  }

  // -- approvals -----------------------------------------------------------------------------

  async listApprovals({ state = 'pending', taskId = '' } = {}) {
    const request = { pageSize: 500, taskId, state: state ? `APPROVAL_STATE_${state.toUpperCase()}` : 'APPROVAL_STATE_UNSPECIFIED' };
    return (await this._unary('approvals', 'ListApprovals', request)).approvals.map(convert.approval);
  }

  // Needs the approver credential; the decision is recorded as "human via node" (a `decidedBy`
  // option is ignored). `scope`: 'once', 'task' or 'task_pattern'.
  async approve(approvalId, { scope = 'once', reason = '' } = {}) {
    const request = { approvalId, reason, scope: `APPROVAL_SCOPE_${scope.toUpperCase()}` };
    return convert.approval(await this._unary('approvals', 'Approve', request, CALL_TIMEOUT_MS, this.approverMetadata));
  }

  async deny(approvalId, { reason = '' } = {}) {
    return convert.approval(await this._unary('approvals', 'Deny', { approvalId, reason }, CALL_TIMEOUT_MS, this.approverMetadata));
  }

  // -- skills and memory ---------------------------------------------------------------------

  async listSkills() {
    const response = await this._unary('skills', 'ListSkills', { pageSize: 500 });
    return { skills: response.skills.map(convert.skill), invalid: response.invalidSkills };
  }

  async validateSkill({ skillMd, folderName = '', name }) {
    const request = name ? { name } : { skillMd, folderName };
    const response = await this._unary('skills', 'ValidateSkill', request);
    return { valid: response.valid, problems: response.problems };
  }

  async remember(text, { kind = 'note', tags = [], taskId = '', metadata = {} } = {}) {
    const request = { text, kind, tags, taskId, metadata: convert.toStruct(metadata) };
    return convert.memory(await this._unary('memory', 'Remember', request));
  }

  async search(text, { topK = 5, kind = '', tags = [] } = {}) {
    const response = await this._unary('memory', 'Search', { text, topK, filter: { kind, tags } });
    return response.results.map((hit) => ({ memory: convert.memory(hit.memory), score: hit.score }));
  }
}

module.exports = { DuckLMClient, DuckLMError, REST_STATUSES, convert };
