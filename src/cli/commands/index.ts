import type { CommandModule } from 'yargs';
import { swarmCommand } from './swarm.js';
import { stackCommand } from './stack.js';
import { fitCommand } from './fit.js';
import { demoCommand } from './demo.js';
import { gateCommand } from './gate.js';
import { reportCommand } from './report.js';
import { runCommand } from './run.js';
import { planCommand } from './plan.js';
import { k8sCommand } from './k8s.js';
import { mergeCommand } from './merge.js';
import { poolCommand } from './pool.js';

/** Every CLI command, one file each (its flags, its handler and its I/O), keyed by what the user types. Heavy modules load inside each handler. */
export const commands: ReadonlyArray<CommandModule<object, object>> = [runCommand, planCommand, demoCommand, swarmCommand, stackCommand, fitCommand, reportCommand, gateCommand, k8sCommand, mergeCommand, poolCommand];
