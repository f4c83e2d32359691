<?php

namespace App\Http\Controllers;

use App\Jobs\WriteJobMark;
use App\Models\Item;
use Illuminate\Http\Request;
use Illuminate\Support\Facades\DB;
use RuntimeException;

/*
 * Stateless routes: each does one kind of real work (text, JSON, a
 * database query, a Blade render, an upload, an error, a queued job).
 */
class DemoController extends Controller
{
    public function index()
    {
        return response()->json([
            'app' => config('app.name'),
            'routes' => ['/text', '/json', '/db', '/blade', '/session', '/upload',
                '/form', '/login', '/me', '/throw', '/dispatch', '/flash',
                '/flash/show', '/locale'],
        ]);
    }

    public function text()
    {
        return response('Hello from Laravel on Askr', 200)
            ->header('Content-Type', 'text/plain; charset=UTF-8');
    }

    public function json(Request $request)
    {
        return response()->json([
            'message' => 'hello',
            'framework' => app()->version(),
            'method' => $request->method(),
            'query' => $request->query(),
        ]);
    }

    public function db()
    {
        $items = Item::query()->orderBy('id')->get(['id', 'name', 'price']);

        return response()->json([
            'count' => $items->count(),
            'total' => $items->sum('price'),
            'items' => $items,
        ]);
    }

    public function blade()
    {
        return view('items', [
            'title' => 'Items',
            'items' => Item::query()->orderBy('id')->get(),
        ]);
    }

    public function upload(Request $request)
    {
        $file = $request->file('file');
        if ($file === null || ! $file->isValid()) {
            return response()->json(['error' => 'no valid file in field "file"'], 422);
        }

        return response()->json([
            'name' => $file->getClientOriginalName(),
            'size' => $file->getSize(),
            'sha256' => hash_file('sha256', $file->getRealPath()),
        ]);
    }

    public function throw()
    {
        throw new RuntimeException('Deliberate failure from /throw');
    }

    public function dispatchJob(Request $request)
    {
        $note = (string) $request->query('note', 'dispatched');
        WriteJobMark::dispatch($note);

        return response()->json([
            'queued' => true,
            'note' => $note,
            'pending' => DB::table('jobs')->count(),
        ]);
    }
}
