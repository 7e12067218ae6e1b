// Types of supported-node.mjs (plain JavaScript, so that it runs on the old Node it replaces).
export declare const IMAGE_NODE_MAJOR: number
export declare const MIN_NODE_MAJOR: number
export declare function nodeBinDir(options?: { exact?: boolean; log?: (line: string) => void }): string | null
