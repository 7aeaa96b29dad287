'use strict';
// Runs against a running DuckLM whose model has been scripted (tests/clients/test_node_client.py
// starts it and queues the model's outputs): a gated write, an approval from Node, and errors.
// Addresses come from DUCKLM_RUNTIME_ADDRESS, DUCKLM_TOOLS_ADDRESS, DUCKLM_SKILLS_ADDRESS.

const test = require('node:test');
const assert = require('node:assert/strict');
const { DuckLMClient, DuckLMError } = require('..');

test('a gated tool waits for an approval given from Node, then the task completes', async () => {
  const client = new DuckLMClient();
  try {
    const events = [];
    for await (const event of client.streamChat('Please write node.txt')) events.push(event);
    const taskId = events[0].taskId;
    assert.equal(events.at(-1).type, 'status_changed');
    assert.equal(events.at(-1).payload.to, 'waiting_approval');
    assert.equal(events.at(-1).data.to, 'waiting_approval'); // the plain copy, for older callers
    const requested = events.find((event) => event.type === 'approval_requested');
    assert.equal(requested.payload.tool, 'write_file');
    assert.deepEqual(requested.payload.arguments, { path: 'node.txt', content: 'written from node' });

    const task = await client.getTask(taskId);
    assert.equal(task.status, 'waiting_approval');
    assert.equal(task.pendingApprovalId, requested.payload.approvalId);
    const pending = await client.listApprovals({ taskId });
    assert.deepEqual(pending.map((approval) => approval.id), [task.pendingApprovalId]);

    const approved = await client.approve(task.pendingApprovalId, { decidedBy: 'node-test' });
    assert.equal(approved.state, 'approved');
    assert.equal(approved.decidedBy, 'human via node'); // the credential's principal, not the claim
    const rest = [];
    for await (const event of client.streamUntilRest(taskId, { afterSeq: events.at(-1).seq })) rest.push(event);
    assert.equal(rest.at(-1).payload.to, 'completed');
    assert.ok(rest.some((event) => event.type === 'tool_result' && event.payload.ok === true));
    assert.equal((await client.getTask(taskId)).lastReply, 'Node wrote it.');
  } finally {
    client.close();
  }
});

test('errors carry the status code and say which call failed', async () => {
  const client = new DuckLMClient();
  try {
    await assert.rejects(client.getTask('no-such-task'), (error) => {
      assert.ok(error instanceof DuckLMError);
      assert.equal(error.code, 'NOT_FOUND');
      assert.match(error.message, /^runtime GetTask failed with NOT_FOUND/);
      return true;
    });
    await assert.rejects(client.approve('nope'), (error) => error.code === 'NOT_FOUND');
    const withoutCredential = new DuckLMClient({ approverToken: '' });
    try {
      await assert.rejects(withoutCredential.approve('nope'), (error) => error.code === 'PERMISSION_DENIED');
    } finally {
      withoutCredential.close();
    }
  } finally {
    client.close();
  }
});

test('skills are listed and validated over the same contract', async () => {
  const client = new DuckLMClient();
  try {
    const { skills } = await client.listSkills();
    assert.ok(skills.some((skill) => skill.name === 'analyze-project'));
    const result = await client.validateSkill({ skillMd: '---\nname: x\n---\n', folderName: 'y' });
    assert.equal(result.valid, false);
    assert.ok(result.problems.length > 0);
  } finally {
    client.close();
  }
});
