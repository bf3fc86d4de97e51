import type { CommandModule } from 'yargs';
import { RmmscaleError } from '../../core/errors.js';
import { EXIT } from '../../core/exit-codes.js';

// Placeholder until the reference stacks land (issue 3): refuses loudly rather than pretending.
export const stackCommand: CommandModule<object, object> = {
  command: 'stack',
  describe: 'run a reference RMM stack (not built yet)',
  handler: () => {
    throw new RmmscaleError('ERR_NOT_BUILT', 'stack: not built yet', EXIT.internal);
  },
};
