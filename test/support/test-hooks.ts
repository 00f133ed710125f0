// What test support needs of a test to clean up after it: its `after`
// (a TestContext, or suiteHooks() for a whole describe). Its own module so
// that support modules can take it without importing the cluster.
import type { TestContext } from 'node:test';

export type TestHooks = Pick<TestContext, 'after'>;
