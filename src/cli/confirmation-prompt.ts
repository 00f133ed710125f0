// The interactive "Apply these changes?" question. Only the exact word `yes`
// confirms, as with the engines themselves: an accidental Enter, a typo or
// Ctrl-C never applies anything.
import { createInterface } from 'node:readline/promises';
import type { InputStream, OutputStream } from './output.ts';

export async function askForConfirmation(input: InputStream, output: OutputStream, question: string): Promise<boolean> {
  const prompt = createInterface({ input, output: output as NodeJS.WritableStream, terminal: input.isTTY === true });
  try {
    const answer = await new Promise<string>((resolve) => {
      prompt.on('SIGINT', () => resolve(''));
      prompt.on('close', () => resolve(''));
      prompt.question(question).then(resolve, () => resolve(''));
    });
    return answer.trim() === 'yes';
  } finally {
    prompt.close();
  }
}
