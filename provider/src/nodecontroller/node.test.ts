import type { V1NodeStatus } from '@kubernetes/client-node';
import { nodeStatusChanged } from './node.js';

describe('nodeStatusChanged', () => {
  const computed: V1NodeStatus = {
    capacity: { cpu: '2', memory: '24683656Ki' },
    conditions: [
      { type: 'Ready', status: 'True', reason: 'EdgeAgentReady', message: 'edge agent is posting ready status' },
      { type: 'MemoryPressure', status: 'False', reason: 'EdgeAgentHasSufficientMemory', message: '' },
    ],
    images: [],
  };

  it('takes the status the API hands back (own key order, empty message and image list omitted) for the one it was written from', () => {
    const fromApi: V1NodeStatus = {
      capacity: { memory: '24683656Ki', cpu: '2' },
      conditions: [
        { type: 'Ready', status: 'True', reason: 'EdgeAgentReady', message: 'edge agent is posting ready status' },
        { type: 'MemoryPressure', status: 'False', reason: 'EdgeAgentHasSufficientMemory' },
      ],
    };
    expect(nodeStatusChanged(fromApi, computed)).toBe(false);
    // The client's model order: conditions before capacity.
    expect(nodeStatusChanged({ conditions: fromApi.conditions, capacity: fromApi.capacity }, computed)).toBe(false);
  });

  it('sees a condition or capacity change', () => {
    expect(nodeStatusChanged(computed, { ...computed, capacity: { cpu: '4', memory: '24683656Ki' } })).toBe(true);
    expect(nodeStatusChanged(computed, { ...computed, conditions: [{ type: 'Ready', status: 'False', reason: 'X', message: '' }] })).toBe(
      true,
    );
  });
});
