/** The terminal UI: screen, line editor, keys, commands and formatting. */
export { runTerminal, shouldUseColor } from "./terminal.ts";
export { accountCommands, accountNotices } from "./account_commands.ts";
