import { fakeService } from './services.ts';

export const upServices = [fakeService('alpha-one'), fakeService('alpha-two')];
