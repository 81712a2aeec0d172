import { attachTests } from './attach.ts';

attachTests('a');
