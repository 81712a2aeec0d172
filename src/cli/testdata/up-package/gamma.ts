import { fakeService } from './services.ts';

export const upServices = [fakeService('gamma')];
