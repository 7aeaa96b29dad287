#!/usr/bin/env node
'use strict';
// Chat with DuckLM from Node: streams the reply as the model writes it.
//   node examples/chat.js "What is in README.md?"          (add --json for a summary line)
// Addresses come from DUCKLM_RUNTIME_ADDRESS etc. (default 127.0.0.1:50051 ...).

const { DuckLMClient } = require('..');

async function main() {
  const args = process.argv.slice(2);
  const json = args.includes('--json');
  const message = args.filter((arg) => arg !== '--json').join(' ');
  if (!message) {
    console.error('usage: node examples/chat.js [--json] MESSAGE');
    process.exit(2);
  }
  const client = new DuckLMClient();
  try {
    let taskId = '';
    let status = '';
    let streamed = '';
    let reply = '';
    for await (const event of client.streamChat(message)) {
      taskId = taskId || event.taskId;
      if (event.type === 'model_token' && event.payload.reply) {
        streamed += event.payload.reply;
        if (!json) process.stdout.write(event.payload.reply);
      } else if (event.type === 'assistant_message') {
        reply = event.payload.text;
      } else if (event.type === 'status_changed') {
        status = event.payload.to;
      }
    }
    const task = await client.getTask(taskId);
    if (json) {
      console.log(JSON.stringify({ taskId, status, reply, streamed, steps: task.steps, usage: task.usage }));
    } else {
      process.stdout.write(streamed ? '\n' : `${reply}\n`);
      if (status === 'waiting_approval') console.error(`waiting for approval ${task.pendingApprovalId}`);
    }
    process.exitCode = status === 'failed' ? 1 : 0;
  } finally {
    client.close();
  }
}

main().catch((error) => {
  console.error(`chat.js: ${error.message}`);
  process.exit(1);
});
