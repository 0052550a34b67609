import { HEAP_GROWING_PERCENT, limitHeapGrowth } from '../../src/util/heap';

describe('heap growth', () => {
  it("sets V8's heap growing factor at startup", () => {
    const set: string[] = [];
    expect(limitHeapGrowth([], (flags) => set.push(flags))).toBe(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
    expect(set).toEqual(['--heap-growing-percent=50']);
  });

  it('leaves a factor given on the command line (either spelling) as it is', () => {
    for (const arg of ['--heap-growing-percent=50', '--heap_growing_percent=300']) {
      const set: string[] = [];
      expect(limitHeapGrowth(['--enable-source-maps', arg], (flags) => set.push(flags))).toBeUndefined();
      expect(set).toEqual([]);
    }
  });
});
