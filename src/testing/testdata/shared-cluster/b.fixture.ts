import { attachTests } from './attach.ts';

attachTests('b');
