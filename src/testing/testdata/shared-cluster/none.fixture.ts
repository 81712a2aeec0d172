// A run that never asks for the shared cluster: its global setup still cleans up after crashed runs.
import { test } from 'node:test';

test('nothing', () => {});
