import type { CommandModule } from 'yargs';
import { RmmscaleError } from '../../core/errors.js';
import { EXIT } from '../../core/exit-codes.js';

// Placeholder until the swarm engine lands (issue 2): refuses loudly rather than pretending.
export const swarmCommand: CommandModule<object, object> = {
  command: 'swarm',
  describe: 'drive a target with a simulated agent fleet (not built yet)',
  handler: () => {
    throw new RmmscaleError('ERR_NOT_BUILT', 'swarm: not built yet', EXIT.internal);
  },
};
