/**
 * The worker thread of `buildSongIndexOffThread` (udfs/ann.ts): reads the song embeddings, builds the HNSW
 * graph over them (minutes for a million songs, which the job's event loop must not spend) and saves it
 * for the job's thread to load.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { HnswSongIndex, type IndexBuildTask } from './ann.ts';
import { loadSongEmbeddings } from './song-embeddings.ts';

const task = workerData as IndexBuildTask;
const songs = await loadSongEmbeddings(task.embeddingsFile);
const index = new HnswSongIndex(songs, task.parameters);
await index.save(task.graphFile);
parentPort!.postMessage('saved');
